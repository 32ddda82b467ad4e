"""The committed configs: generated, parseable by basicsr, with the paper's settings, and every type registered."""

import re
from pathlib import Path

import pytest
import yaml
from basicsr.utils.options import ordered_yaml

from conftest import REPO
from core.io.option_file import read_options
from core.training.option_checks import check_registered
from scripts.make_configs import ABPN_SIZES, ECBSR_SIZES, ETDS_SIZES, SCALES, all_configs

ALL_YAMLS = sorted((REPO / 'configs').rglob('*.yml'))


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=ordered_yaml()[0])


def test_committed_configs_are_the_generator_output():
    for rel, text in all_configs().items():
        assert (REPO / rel).read_text() == text, f'{rel} differs: run python scripts/make_configs.py'


@pytest.mark.parametrize('path', ALL_YAMLS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_config_names_registered_types(path):
    check_registered(load(path))


def test_every_config_the_readme_and_docs_name_exists():
    texts = [REPO / 'README.md', *sorted((REPO / 'docs').rglob('*.md'))]
    named = {m for text in texts for m in re.findall(r'configs/[\w./-]+\.yml', text.read_text())}
    assert 'configs/train/ETDS_M4C32_x4.yml' in named  # the README's first training command
    assert sorted(p for p in named if not (REPO / p).is_file()) == []


@pytest.mark.parametrize('size', list(ETDS_SIZES))
@pytest.mark.parametrize('scale', SCALES)
def test_train_configs_have_the_paper_hyperparameters(size, scale):
    opt = load(REPO / 'configs' / 'train' / f'ETDS_{size}_x{scale}.yml')
    num_block, num_feat = ETDS_SIZES[size]
    assert dict(opt['network_g']) == {'type': 'ETDS', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': scale,
                                      'num_block': num_block, 'num_feat': num_feat, 'num_residual_feat': 3}
    train, data = opt['train'], opt['datasets']['train']
    assert (data['lq_size'], data['batch_size_per_gpu']) == (64, 32)
    assert all(data[k] for k in ('use_hflip', 'use_vflip', 'use_rot', 'use_channels_shuffle'))
    assert train['optim_g']['type'] == 'Adam' and train['optim_g']['lr'] == 5e-4
    assert list(train['optim_g']['betas']) == [0.9, 0.99]
    assert (train['total_iter'], train['ema_decay']) == (1600000, 0.999)
    assert (train['fixed_residual_model_iters'], train['interpolation_loss_weight']) == (100000, 0.5)
    assert train['pixel_opt']['type'] == 'L1Loss'
    assert opt['val']['val_freq'] == 5000 and opt['datasets']['val']['dataroot'].endswith('Set5')
    for metric in opt['val']['metrics'].values():
        assert metric['crop_border'] == scale and metric['test_y_channel'] is True


def test_test_configs_cover_the_six_benchmarks():
    opt = load(REPO / 'configs' / 'test' / 'ETDS_M4C32_x4.yml')
    names = [d['name'] for d in opt['datasets'].values()]
    assert names == ['Set5', 'Set14', 'B100', 'Urban100', 'Manga109', 'DIV2K_val']


def test_every_family_has_train_and_test_configs_at_every_scale():
    names = [f'ECBSR_{s}' for s in ECBSR_SIZES] + [f'ABPN_{s}' for s in ABPN_SIZES] + ['ESPCN', 'FSRCNN', 'Plain_M6C32']
    for name in names:
        for scale in SCALES:
            train = load(REPO / 'configs' / 'train' / f'{name}_x{scale}.yml')
            assert train['model_type'] == 'IRModel' and train['train']['total_iter'] == 1600000
            assert train['train']['ema_decay'] == 0.999 and train['train']['optim_g']['lr'] == 5e-4
            data = train['datasets']['train']
            assert data['lq_size'] == 64 and data['batch_size_per_gpu'] == 32
            assert train['train']['pixel_opt']['type'] == 'L1Loss'
            assert all(m['crop_border'] == scale for m in train['val']['metrics'].values())
            assert (REPO / 'configs' / 'test' / f'{name}_x{scale}.yml').is_file()
    assert load(REPO / 'configs' / 'train' / 'ECBSR_M6C40_x3.yml')['network_g']['num_feat'] == 40


def test_sesr_configs_follow_the_authors_flags_and_x4_starts_from_x2():
    for size in ('M5', 'M11', 'XL'):
        x2 = load(REPO / 'configs' / 'train' / f'SESR_{size}_x2.yml')
        x4 = load(REPO / 'configs' / 'train' / f'SESR_{size}_x4.yml')
        assert x2['train']['optim_g']['lr'] == 2e-4 and x2['datasets']['train']['batch_size_per_gpu'] == 32
        assert x2['train']['pixel_opt']['type'] == 'L1Loss' and x2['network_g']['linear_block_type'] == 'collapsed'
        assert x2['network_g']['num_in_ch'] == 1 and x2['datasets']['train']['color'] == 'y'  # on Y, as the authors
        test = load(REPO / 'configs' / 'test' / f'SESR_{size}_x4.yml')
        assert all(d['color'] == 'y' for d in test['datasets'].values())
        assert x2['path']['pretrain_network_g'] is None
        assert x4['path']['pretrain_network_g'] == f'experiments/SESR_{size}_x2/models/net_g_latest.pth'
        assert x4['path']['strict_load_g'] is False
    m5 = load(REPO / 'configs' / 'train' / 'SESR_M5_x2.yml')['network_g']
    assert (m5['m'], m5['int_features'], m5['feature_size']) == (5, 16, 256)
    xl = load(REPO / 'configs' / 'train' / 'SESR_XL_x4.yml')['network_g']
    assert (xl['m'], xl['int_features'], xl['feature_size'], xl['upscale']) == (11, 32, 64, 4)


def test_vdsr_config_is_the_paper_recipe():
    opt = load(REPO / 'configs' / 'train' / 'VDSR.yml')
    train, data = opt['train'], opt['datasets']['train']
    assert opt['model_type'] == 'VDSRModel' and dict(opt['network_g']) == {'type': 'VDSR', 'upscale': 1}
    assert (train['optim_g']['type'], train['optim_g']['lr'], train['optim_g']['momentum']) == ('SGD', 0.1, 0.9)
    assert train['optim_g']['weight_decay'] == 1e-4 and train['scheduler']['gamma'] == 0.1
    assert dict(train['grad_clip']) == {'type': 'adjustable', 'theta': 0.4}
    assert list(data['scales']) == [2, 3, 4] and data['patch_size'] == 41
    for scale in SCALES:
        test = load(REPO / 'configs' / 'test' / f'VDSR_x{scale}.yml')
        assert test['network_g']['upscale'] == scale
        assert all(d['color'] == 'y' for d in test['datasets'].values())


def test_esr_configs_work_on_y_and_name_the_official_files():
    for model_id in ('eSR-MAX_s2_K3_C1', 'eSR-TM_s2_K7_C16', 'eSR-TR_s2_K7_C16', 'eSR-CNN_s2_C8_D9_S15'):
        train = load(REPO / 'configs' / 'train' / f'{model_id}.yml')
        assert dict(train['network_g']) == {'type': 'EdgeSR', 'model_id': model_id}
        assert train['datasets']['train']['color'] == 'y' and train['datasets']['val']['color'] == 'y'
        test = load(REPO / 'configs' / 'test' / f'{model_id}.yml')
        assert test['path']['pretrain_network_g'] == f'experiments/pretrained_models/{model_id}.model'


@pytest.mark.parametrize('name', ['ETDS_M4C32_x4', 'ECBSR_M4C16_x2', 'ABPN_M4C28_x3', 'ESPCN_x4', 'FSRCNN_x2',
                                  'Plain_M6C32_x3'])
def test_the_compared_families_train_with_the_authors_recipe(name):
    """Constant 5e-4 (the only milestone is the last iteration), seed 10, every sub-image 10 times per epoch."""
    path = REPO / 'configs' / 'train' / f'{name}.yml'
    opt = yaml.safe_load(path.read_text())
    train = opt['train']
    assert train['optim_g']['lr'] == 5e-4 and train['total_iter'] == 1_600_000
    assert train['scheduler'] == {'type': 'MultiStepLR', 'milestones': [1_600_000],
                                  'gamma': 0.5 if name.startswith('ETDS') else 1.0}
    assert opt['manual_seed'] == 10 and opt['datasets']['train']['dataset_enlarge_ratio'] == 10
    if name.startswith('ETDS'):
        assert (train['fixed_residual_model_iters'], train['interpolation_loss_weight']) == (100_000, 0.5)
    ours = read_options(str(path), ['train:scheduler:milestones=[400000,800000,1200000]', 'train:scheduler:gamma=0.5'])
    assert ours['train']['scheduler']['milestones'] == [400_000, 800_000, 1_200_000]  # the variant the header names
