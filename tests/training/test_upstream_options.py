"""Option files in the ETDS authors' dialect (their key names, written here; no file of theirs is copied) train and
test exactly as their hand-converted twins, each translation is said, and a key nothing reads is one line."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch

from conftest import (
    SHARED_BENCHMARKS,
    assert_one_line_error,
    eval_opt,
    run_repo_script,
    training_opt,
    write_edsr_pairs,
    write_yaml,
)
from core.errors import UserError
from core.io.checkpoint import load_checkpoint, save_checkpoint
from core.io.upstream_options import translate_upstream
from core.training.pipelines import evaluate_pipeline, train_pipeline

ECBSR_ARGS = {'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_block': 1, 'num_feat': 8, 'act_type': 'prelu'}


def same_name_layout(edsr_root: Path, root: Path, scale: int = 2) -> tuple[Path, Path]:
    """The authors' benchmark folders: GTmod12/ and LRbicx{s}/ holding files of the same names."""
    gt, lq = root / 'GTmod12', root / f'LRbicx{scale}'
    shutil.copytree(edsr_root / 'HR', gt)
    lq.mkdir(parents=True)
    for path in (edsr_root / 'LR_bicubic' / f'X{scale}').iterdir():
        shutil.copy(path, lq / path.name.replace(f'x{scale}.png', '.png'))
    return gt, lq


def upstream_train_opt(gt: Path, lq: Path, name: str) -> dict:
    """Our tiny training config rewritten in the authors' dialect: no path:, train:losses, their dataset and ECBSR."""
    opt = training_opt(gt.parent, name=name, total_iter=3)
    opt['model_type'] = 'IRModel'
    opt['network_g'] = {'type': 'ECBSR', **ECBSR_ARGS}
    train_set = opt['datasets']['train']
    del train_set['dataroot']
    train_set.update(type='PairedImageDataset', dataroot_gt=str(gt), dataroot_lq=str(lq))
    opt['datasets'] = {'train': train_set}
    opt.pop('val')
    opt.pop('path')
    train = opt['train']
    for key in ('fixed_residual_model_iters', 'interpolation_loss_weight'):
        train.pop(key)
    train['losses'] = {'L1Loss': train.pop('pixel_opt')}
    return opt


def test_each_dialect_key_is_translated_and_said():
    opt = {'name': 'x', 'resume': {'network_g_path': 'w.pth', 'network_g_strict': True},
           'network_g': {'type': 'ECBSR', **ECBSR_ARGS},
           'train': {'losses': {'L1Loss': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}}},
           'datasets': {'train': {'type': 'PairedImageDataset', 'lq_size': 64, 'use_vflip': True},
                        'test_1': {'type': 'PairedImageDataset', 'dataroot_gt': 'a', 'dataroot_lq': 'b'}}}
    said = translate_upstream(opt, 'x.yml')
    assert opt['path'] == {'pretrain_network_g': 'w.pth', 'strict_load_g': True} and 'resume' not in opt
    assert opt['train'] == {'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}}
    assert opt['network_g']['type'] == 'ECBSR_mobilesr'
    assert opt['datasets']['train']['type'] == 'PairedSRDataset'
    assert opt['datasets']['test_1']['type'] == 'PairedImageDataset'  # basicsr's own reads every key it has
    assert said == ['resume:network_g_path -> path:pretrain_network_g', 'resume:network_g_strict -> path:strict_load_g',
                    'train:losses:L1Loss -> train:pixel_opt',
                    "datasets:train: the authors' PairedImageDataset (lq_size, flips, channel shuffle) -> "
                    'type: PairedSRDataset',
                    "network_g: type ECBSR with num_feat/act_type (the authors' ECBSR) -> type: ECBSR_mobilesr"]


def test_our_own_files_are_left_as_they_are(tmp_path):
    opt = training_opt(tmp_path)
    before = copy.deepcopy(opt)
    assert translate_upstream(opt, 'ours.yml') == [] and opt == before


@pytest.mark.parametrize(('change', 'message'), [
    (lambda o: o.update(resume={'network_g_path': 'w.pth', 'network_g_resume': True}),
     'resume:network_g_resume is read by nothing here'),
    (lambda o: o['train'].update(losses={'L1Loss': {'type': 'L1Loss'}, 'MSELoss': {'type': 'MSELoss'}}),
     'train:losses holds 2 losses'),
    (lambda o: o['datasets']['train'].update(type='PairedImageDataset', gt_crop=96),
     'datasets:train:gt_crop is read by nothing here'),
])
def test_a_key_nothing_reads_is_a_one_line_error(tmp_path, change, message):
    opt = training_opt(tmp_path)
    opt['train'].pop('pixel_opt')
    opt['train']['losses'] = {'L1Loss': {'type': 'L1Loss'}}
    change(opt)
    with pytest.raises(UserError, match=message):
        translate_upstream(opt, 'theirs.yml')


def test_their_test_yaml_gives_the_psnr_of_its_hand_converted_twin(tmp_path, capsys):
    from basicsr.archs import build_network

    edsr = write_edsr_pairs(tmp_path / 'edsr', 2, [(24, 28), (30, 26)])
    gt, lq = same_name_layout(edsr, tmp_path / 'theirs')
    network = {'type': 'ECBSR_mobilesr', **ECBSR_ARGS}
    torch.manual_seed(0)
    save_checkpoint(str(tmp_path / 'w.pth'), build_network(network).state_dict(), {})
    ours = eval_opt(edsr, str(tmp_path / 'w.pth'), network, name='ours')
    theirs = eval_opt(edsr, None, {'type': 'ECBSR', **ECBSR_ARGS}, name='theirs')
    theirs.pop('path')
    theirs['resume'] = {'network_g_path': str(tmp_path / 'w.pth'), 'network_g_strict': True}
    theirs['datasets']['test_1'] = {'name': 'synthetic', 'type': 'PairedImageDataset', 'dataroot_gt': str(gt),
                                    'dataroot_lq': str(lq), 'io_backend': {'type': 'disk'}}
    expected = evaluate_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / 'ours.yml', ours)])
    capsys.readouterr()
    measured = evaluate_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / 'theirs.yml', theirs)])
    assert measured == expected
    printed = capsys.readouterr().out
    for line in ('resume:network_g_path -> path:pretrain_network_g', 'type: ECBSR_mobilesr'):
        assert "theirs.yml: the authors' option: " in printed and line in printed


@pytest.mark.slow
def test_their_train_yaml_trains_exactly_as_its_hand_converted_twin(tmp_path):
    edsr = write_edsr_pairs(tmp_path / 'edsr', 2, [(32, 32), (40, 36), (36, 44)])
    gt, lq = same_name_layout(edsr, tmp_path / 'theirs')
    theirs = upstream_train_opt(gt, lq, 'theirs')
    ours = copy.deepcopy(theirs)  # converted by hand, as a user would before this reader existed
    ours['name'] = 'ours'
    ours['path'] = {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None}
    ours['train']['pixel_opt'] = ours['train'].pop('losses')['L1Loss']
    ours['network_g']['type'] = 'ECBSR_mobilesr'
    ours['datasets']['train']['type'] = 'PairedSRDataset'
    results = {}
    for name, opt in (('theirs', theirs), ('ours', ours)):
        experiment = train_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / f'{name}.yml', opt)])
        results[name] = load_checkpoint(f'{experiment}/models/net_g_latest.pth', param_key='params')[0]
    assert results['theirs'].keys() == results['ours'].keys()
    assert all(torch.equal(results['theirs'][k], results['ours'][k]) for k in results['ours'])
    assert theirs['datasets']['train']['use_channels_shuffle']  # the augmentation basicsr's class would have lost


@pytest.mark.slow
def test_train_py_names_an_unread_key_of_their_dialect_in_one_line(tmp_path):
    edsr = write_edsr_pairs(tmp_path / 'edsr', 2, [(32, 32)])
    gt, lq = same_name_layout(edsr, tmp_path / 'theirs')
    opt = upstream_train_opt(gt, lq, 'must_not_exist')
    opt['resume'] = {'network_g_path': None, 'network_g_resume': True}
    result = run_repo_script('train.py', '-opt', write_yaml(tmp_path / 'bad.yml', opt), cwd=tmp_path)
    assert_one_line_error(result, 'resume:network_g_resume is read by nothing here')


@pytest.mark.parametrize(('file', 'network'), [  # the official files hold the deploy forms, as their test YAMLs say
    ('ETDS/ETDS_M4C32_x2.pth', {'type': 'ETDSForInference', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2,
                                'num_block': 4, 'num_feat': 32}),
    ('ECBSR/ECBSR_M4C16_x2.pth', {'type': 'ECBSRT', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_block': 4,
                                  'num_feat': 16, 'act_type': 'prelu'}),
])
def test_official_checkpoints_through_their_test_yaml_give_our_psnr(tmp_path, shared_set5, file, network):
    checkpoint = SHARED_BENCHMARKS.parent / 'checkpoints' / file
    if not checkpoint.is_file():
        pytest.skip(f'../shared/checkpoints/{file} is not present (it is only on the project machines)')
    gt, lq = same_name_layout(shared_set5, tmp_path / 'Set5')
    ours = eval_opt(shared_set5, str(checkpoint), None, name='ours', scale=2)  # the network from the file's keys
    theirs = eval_opt(shared_set5, None, network, name='theirs', scale=2)
    theirs.pop('path')
    theirs['resume'] = {'network_g_path': str(checkpoint), 'network_g_strict': True}
    theirs['datasets']['test_1'] = {'name': 'synthetic', 'type': 'PairedImageDataset', 'dataroot_gt': str(gt),
                                    'dataroot_lq': str(lq), 'io_backend': {'type': 'disk'}}
    expected = evaluate_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / 'ours.yml', ours)])['synthetic']
    measured = evaluate_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / 'theirs.yml', theirs)])['synthetic']
    # the same images in another order: the means may differ in the last bit of a float64
    assert measured == pytest.approx(expected, abs=1e-9) and 36 < measured['psnr'] < 38.5


def test_their_train_yaml_describes_a_checkpoint_for_the_converter(tmp_path):
    from basicsr.archs import build_network

    from core.convert import convert_checkpoint

    torch.save(build_network({'type': 'ECBSR_mobilesr', **ECBSR_ARGS}).state_dict(), tmp_path / 'raw.pth')
    theirs = write_yaml(tmp_path / 'theirs.yml', {'name': 'x', 'network_g': {'type': 'ECBSR', **ECBSR_ARGS}})
    report = convert_checkpoint(str(tmp_path / 'raw.pth'), str(tmp_path / 'et.pth'), opt_path=theirs)
    assert (report.source_arch, report.target_arch) == ('ECBSR_mobilesr', 'ECBSRET')
