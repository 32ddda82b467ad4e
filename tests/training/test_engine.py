"""Training, CPU resume, ETDSModel's loss and freezing, EMA, testing, and the entry points' error handling."""

import copy
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from basicsr.models import build_model
from torch.nn import functional as F

from conftest import (
    REPO,
    assert_one_line_error,
    eval_opt,
    free_port,
    run_repo_script,
    tiny_etds,
    training_opt,
    write_edsr_pairs,
    write_yaml,
)
from core.convert import convert_checkpoint
from core.errors import UserError
from core.io.checkpoint import load_checkpoint
from core.training.pipelines import evaluate_pipeline, train_pipeline


@pytest.fixture
def data_root(tmp_path):
    return write_edsr_pairs(tmp_path / 'data', 2, [(34, 30), (40, 36), (33, 41)])


def model_opt(data_root, **train_extra):
    opt = training_opt(data_root, **train_extra)
    opt |= {'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1}
    return opt


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {'lq': torch.rand(2, 3, 8, 8, generator=g), 'gt': torch.rand(2, 3, 16, 16, generator=g)}


def snapshot(params):
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize('fixed', [1, 2, 10])
def test_residual_stream_is_frozen_through_n_minus_1_and_first_trains_at_n(data_root, fixed):
    """As the authors' ETDSModel: it unfreezes when current_iter == N, before that iteration's step."""
    model = build_model(model_opt(data_root, fixed_residual_model_iters=fixed))
    residual = model.residual_params
    others = [p for p in model.net_g.parameters() if all(p is not r for r in residual)]
    start_residual, start_others = snapshot(residual), snapshot(others)
    for it in range(1, fixed):
        model.feed_data(batch(it))
        model.optimize_parameters(it)
    assert all(torch.equal(a, b) for a, b in zip(start_residual, residual, strict=True))
    if fixed > 1:
        assert any(not torch.equal(a, b) for a, b in zip(start_others, others, strict=True))
    model.feed_data(batch(fixed))
    model.optimize_parameters(fixed)
    assert all(not torch.equal(a, b) for a, b in zip(start_residual, residual, strict=True))


def test_loss_is_sr_loss_plus_alpha_times_interpolation_loss(data_root):
    model = build_model(model_opt(data_root, interpolation_loss_weight=0.5))
    data = batch()
    net = copy.deepcopy(model.net_g)
    with torch.no_grad():
        sr, residual = net(data['lq'])
    model.feed_data(data)
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert log['l_pix'] == pytest.approx(F.l1_loss(sr, data['gt']).item(), rel=1e-6)
    assert log['l_interp'] == pytest.approx(F.l1_loss(residual, data['gt']).item(), rel=1e-6)
    no_interp = build_model(model_opt(data_root, interpolation_loss_weight=0.0))
    no_interp.feed_data(data)
    no_interp.optimize_parameters(1)
    assert 'l_interp' not in no_interp.get_current_log()


def test_ema_follows_the_decay(data_root):
    model = build_model(model_opt(data_root, ema_decay=0.5))
    before = {k: v.clone() for k, v in model.net_g_ema.state_dict().items()}
    model.feed_data(batch())
    model.optimize_parameters(5)
    after = model.net_g.state_dict()
    for key, ema in model.net_g_ema.state_dict().items():
        torch.testing.assert_close(ema, 0.5 * before[key] + 0.5 * after[key], rtol=0, atol=1e-7)


def test_train_saves_resumes_on_cpu_and_tests(tmp_path, data_root):
    opt = training_opt(data_root, name='tiny', total_iter=4)
    opt['logger']['use_tb_logger'] = True
    opt_path = write_yaml(tmp_path / 'train.yml', opt)
    experiment = train_pipeline(str(tmp_path), ['-opt', opt_path])
    assert list((tmp_path / 'tb_logger' / 'tiny').glob('events.out.tfevents.*'))
    models = tmp_path / 'experiments' / 'tiny' / 'models'
    assert experiment == str(tmp_path / 'experiments' / 'tiny')
    assert sorted(p.name for p in models.iterdir()) == ['net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth']
    raw = torch.load(models / 'net_g_latest.pth', weights_only=True)
    assert set(raw) == {'params', 'params_ema', 'meta'}
    assert raw['meta']['arch'] == 'ETDS' and raw['meta']['args'] == {k: v for k, v in tiny_etds().items()
                                                                     if k != 'type'}
    states = tmp_path / 'experiments' / 'tiny' / 'training_states'
    assert sorted(p.name for p in states.iterdir()) == ['2.state', '4.state']

    longer = write_yaml(tmp_path / 'train6.yml', training_opt(data_root, name='tiny', total_iter=6))
    train_pipeline(str(tmp_path), ['-opt', longer, '--auto_resume'])
    log = max((tmp_path / 'experiments' / 'tiny').glob('train_tiny_*.log'), key=lambda p: p.stat().st_mtime)
    assert 'Resuming from ' in log.read_text() and '4.state: epoch 3, batch 1 of 1, iter 4.' in log.read_text()
    assert sorted(p.name for p in states.iterdir()) == ['2.state', '4.state', '6.state']
    assert torch.load(states / '6.state', weights_only=True)['iter'] == 6

    plain = tmp_path / 'plain.pth'
    convert_checkpoint(str(models / 'net_g_latest.pth'), str(plain))
    test_yaml = write_yaml(tmp_path / 'test.yml', eval_opt(data_root, str(plain), network=None))
    results = evaluate_pipeline(str(tmp_path), ['-opt', test_yaml])
    train_form = write_yaml(tmp_path / 'test_train_form.yml',
                            eval_opt(data_root, str(models / 'net_g_latest.pth'), tiny_etds(), name='train_form'))
    train_form_results = evaluate_pipeline(str(tmp_path), ['-opt', train_form])
    psnr = results['synthetic']['psnr']
    assert 10 < psnr < 60
    assert psnr == pytest.approx(train_form_results['synthetic']['psnr'], abs=1e-3)
    assert (tmp_path / 'experiments' / 'results' / 'tiny_test').is_dir()


def bad_train_opts(data_root, tmp_path):
    base = training_opt(data_root, name='must_not_exist')
    unknown_net = copy.deepcopy(base)
    unknown_net['network_g']['type'] = 'ETDSS'
    unknown_model = copy.deepcopy(base) | {'model_type': 'ETDSModle'}
    unknown_loss = copy.deepcopy(base)
    unknown_loss['train']['pixel_opt']['type'] = 'L1Los'
    missing = copy.deepcopy(base)
    missing['datasets']['train']['dataroot'] = str(tmp_path / 'nowhere')
    mismatch_root = write_edsr_pairs(tmp_path / 'mismatch', 2, [(40, 40)])
    cv2.imwrite(str(mismatch_root / 'HR' / 'img0.png'), np.zeros((60, 60, 3), np.uint8))
    mismatched = copy.deepcopy(base)
    mismatched['datasets']['train']['dataroot'] = str(mismatch_root)
    return [
        (unknown_net, ["unknown network type 'ETDSS'", 'ETDSForInference']),
        (unknown_model, ["unknown model type 'ETDSModle'", 'ETDSModel']),
        (unknown_loss, ["unknown loss type 'L1Los'", 'L1Loss']),
        (missing, ['LR_bicubic/X2', 'scripts/make_demo_data.py']),
        (mismatched, ['img0x2.png is 20x20 but', 'HR // 2']),
    ]


@pytest.mark.slow
def test_train_bad_input_is_one_line_and_writes_nothing(tmp_path, data_root):
    for i, (opt, fragments) in enumerate(bad_train_opts(data_root, tmp_path)):
        result = run_repo_script('train.py', '-opt', write_yaml(tmp_path / f'bad{i}.yml', opt), cwd=tmp_path)
        assert_one_line_error(result, *fragments)
    assert not (REPO / 'experiments' / 'must_not_exist').exists()


@pytest.mark.slow
def test_test_py_names_the_misfitting_key_and_refuses_pickles(tmp_path, data_root):
    wrong = {**tiny_etds(), 'num_feat': 12}
    ckpt = tmp_path / 'tiny.pth'
    from basicsr.archs import build_network

    torch.save(build_network(tiny_etds()).state_dict(), ckpt)
    opt = eval_opt(data_root, str(ckpt), wrong, name='must_not_exist')
    result = run_repo_script('test.py', '-opt', write_yaml(tmp_path / 't.yml', opt), cwd=tmp_path)
    assert_one_line_error(result, "'conv_first.weight' has shape (5, 3, 3, 3) in the checkpoint but (9, 3, 3, 3)")
    torch.save(build_network(tiny_etds()), tmp_path / 'module.pth')
    result = run_repo_script('test.py', '-opt', write_yaml(tmp_path / 'p.yml', eval_opt(
        data_root, str(tmp_path / 'module.pth'), tiny_etds(), name='must_not_exist')), cwd=tmp_path)
    assert_one_line_error(result, 'not a weights-only tensor checkpoint')
    assert not (REPO / 'experiments' / 'results' / 'must_not_exist').exists()


def test_missing_option_file_is_one_line(tmp_path):
    assert_one_line_error(run_repo_script('train.py', '-opt', 'nope.yml', cwd=tmp_path), 'nope.yml does not exist')


@pytest.mark.slow
def test_checkpoint_without_meta_is_read_by_its_keys_or_needs_network_g(tmp_path, data_root):
    from basicsr.archs import build_network

    torch.save(build_network(tiny_etds()).state_dict(), tmp_path / 'raw.pth')
    results = evaluate_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / 't.yml', eval_opt(
        data_root, str(tmp_path / 'raw.pth'), None, name='raw_by_keys'))])
    assert set(results['synthetic']) == {'psnr', 'ssim'}  # the raw ETDS was recognised by core.convert.resolver
    torch.save({'head.weight': torch.zeros(4, 3, 3, 3)}, tmp_path / 'unknown.pth')
    result = run_repo_script('test.py', '-opt', write_yaml(tmp_path / 'u.yml', eval_opt(
        data_root, str(tmp_path / 'unknown.pth'), None, name='must_not_exist')), cwd=tmp_path)
    assert_one_line_error(result, 'has no meta; add network_g')
    assert load_checkpoint(str(tmp_path / 'raw.pth'))[1] == {}


def test_datasets_flag_selects_and_rejects_names(tmp_path, data_root):
    from basicsr.archs import build_network

    other = write_edsr_pairs(tmp_path / 'other', 2, [(20, 20)])
    torch.save(build_network(tiny_etds()).state_dict(), tmp_path / 'raw.pth')
    opt = eval_opt(data_root, str(tmp_path / 'raw.pth'), tiny_etds())
    opt['datasets']['test_2'] = dict(opt['datasets']['test_1'], name='other', dataroot=str(other))
    path = write_yaml(tmp_path / 'two.yml', opt)
    assert set(evaluate_pipeline(str(tmp_path), ['-opt', path])) == {'synthetic', 'other'}
    assert set(evaluate_pipeline(str(tmp_path), ['-opt', path, '--datasets', 'other'])) == {'other'}
    with pytest.raises(UserError, match='--datasets Set5 not in the YAML; its datasets are: synthetic, other'):
        evaluate_pipeline(str(tmp_path), ['-opt', path, '--datasets', 'Set5'])


@pytest.mark.slow
def test_distributed_training_on_cpu_uses_gloo_and_accepts_local_rank(tmp_path, data_root):
    """torch.distributed.launch passes --local-rank, and there is no NCCL on a CPU: both must work."""
    opt = training_opt(data_root, name='ddp', total_iter=4)
    opt['datasets']['train']['batch_size_per_gpu'] = 1
    path = write_yaml(tmp_path / 'ddp.yml', opt)
    runner = tmp_path / 'run.py'
    runner.write_text(f'import sys\nsys.path.insert(0, {str(REPO)!r})\nimport core.plugin  # noqa\n'
                      'from core.training.pipelines import train_pipeline\n'
                      f'train_pipeline({str(tmp_path)!r}, sys.argv[1:])\n')
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.launch', '--nproc_per_node=2',
                             f'--master_port={free_port()}', str(runner), '-opt', path, '--launcher', 'pytorch'],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    log = next((tmp_path / 'experiments' / 'ddp').glob('train_ddp_*.log')).read_text()
    assert 'world_size: 2' in log and 'world_size' not in result.stderr  # the options dump is for the log file
    states = tmp_path / 'experiments' / 'ddp' / 'training_states'
    assert sorted(p.name for p in states.iterdir()) == ['2.state', '4.state']
    assert (tmp_path / 'experiments' / 'ddp' / 'models' / 'net_g_latest.pth').is_file()


@pytest.mark.slow
def test_console_is_a_short_header_and_progress_and_the_log_has_the_rest(tmp_path, data_root):
    name = 'quiet_console'
    opt = training_opt(data_root, name=name, total_iter=2)
    shutil.rmtree(REPO / 'experiments' / name, ignore_errors=True)
    try:
        result = run_repo_script('train.py', '-opt', write_yaml(tmp_path / 'q.yml', opt), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) <= 16, result.stderr
        console = result.stderr
        for expected in ('quiet_console: ETDS(num_in_ch=3', 'parameters, ETDSModel on cpu, 1 process(es)',
                         'train: synthetic, 3 images', 'Outputs go to', 'iter:       2', 'data_wait: ',
                         'Latest model:'):
            assert expected in console
        for noise in ('Disable distributed', 'manual_seed', 'Network:', 'PyTorch:'):
            assert noise not in console + result.stdout
        log = next((REPO / 'experiments' / name).glob(f'train_{name}_*.log')).read_text()
        assert 'manual_seed: 0' in log and 'Network:' in log and 'conv_first' in log
    finally:
        shutil.rmtree(REPO / 'experiments' / name, ignore_errors=True)
