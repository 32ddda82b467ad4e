"""train:compile, train:amp and the fused optimizer: the loss still falls and training stays within tolerance.

Each switch trains the same tiny ETDS from the same seed and data as the plain fp32 step; TOLERANCE (the first
loss, and the trained network's output) bounds what the switch may change, from figures measured here.
"""

import re

import pytest
import torch

from conftest import read_metrics, tiny_etds, training_opt, write_edsr_pairs, write_yaml
from core.archs.etds_arch import ETDS
from core.errors import UserError
from core.io.checkpoint import load_checkpoint
from core.training.models.fast_step import step_options
from core.training.pipelines import train_pipeline

ITERATIONS = 40
SWITCHES = {
    'compile': {'compile': True},
    'amp_bf16': {'amp': 'bf16'},
    'amp_fp16': {'amp': 'fp16'},
    'fused_adam': {'optim_g': {'type': 'Adam', 'lr': 5e-3, 'betas': [0.9, 0.99], 'fused': True}},
}
# (first loss, relative; SR output after ITERATIONS steps, max abs on [0, 1]) against the plain step. The first
# loss compares one forward; by the end, Adam's sign-like steps have amplified rounding differences. Compile and
# the fused optimizer only reorder fp32 arithmetic (measured 2.9e-3 and 3e-7 at the end); reduced precision
# rounds every activation to 8 (bf16) or 11 (fp16) bits (measured 0.039 and 0.027).
TOLERANCE = {'compile': (1e-5, 1e-2), 'fused_adam': (1e-6, 1e-5), 'amp_bf16': (1e-2, 0.1), 'amp_fp16': (1e-2, 0.1)}


def _train(root, data, name: str, **train_extra) -> tuple[list[float], dict, dict]:
    opt = training_opt(data, name=name, total_iter=ITERATIONS, **train_extra)
    train = opt['train']
    train['optim_g']['lr'] = 5e-3
    train['fixed_residual_model_iters'] = 10  # the freeze and the unfreeze both happen
    dataset = opt['datasets']['train']
    dataset.update(use_hflip=False, use_vflip=False, use_rot=False, use_channels_shuffle=False, lq_size=12)
    opt['logger']['save_checkpoint_freq'] = ITERATIONS
    train_pipeline(str(root), ['-opt', write_yaml(root / f'{name}.yml', opt)])
    folder = root / 'experiments' / name
    losses = [record['l_pix'] for record in read_metrics(str(folder / 'metrics.jsonl'))]
    params, _ = load_checkpoint(str(folder / 'models' / 'net_g_latest.pth'), param_key='params')
    state = torch.load(folder / 'training_states' / f'{ITERATIONS}.state', weights_only=True)
    return losses, params, state


@pytest.fixture(scope='module')
def plain_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('plain')
    data = write_edsr_pairs(root / 'data', 2, [(40, 36), (36, 44)])
    return root, data, _train(root, data, 'plain')


def _falls(losses: list[float]) -> bool:
    return sum(losses[-5:]) < 0.7 * sum(losses[:5])


def _sr(params: dict, lq: torch.Tensor) -> torch.Tensor:
    net = ETDS(**{k: v for k, v in tiny_etds().items() if k != 'type'})
    net.load_state_dict(params)
    with torch.no_grad():
        return net.eval()(lq)[0]


@pytest.mark.slow
@pytest.mark.parametrize('switch', list(SWITCHES))
def test_switch_trains_within_tolerance(plain_run, switch):
    root, data, (plain_losses, plain_params, _) = plain_run
    losses, params, state = _train(root, data, switch, **SWITCHES[switch])
    assert len(losses) == len(plain_losses) == ITERATIONS
    assert _falls(plain_losses) and _falls(losses), (plain_losses[:5], losses[-5:])
    first_loss, output = TOLERANCE[switch]
    assert abs(losses[0] - plain_losses[0]) <= first_loss * plain_losses[0]
    lq = torch.rand(1, 3, 40, 36, generator=torch.Generator().manual_seed(0))
    worst = (_sr(params, lq) - _sr(plain_params, lq)).abs().max().item()
    assert worst <= output, f'{switch}: the trained networks differ by {worst:.3g}'
    assert abs(losses[-1] - plain_losses[-1]) <= 0.1 * plain_losses[-1]
    assert ('grad_scaler' in state) == (switch == 'amp_fp16')  # fp16's loss scale resumes with the run
    if switch == 'fused_adam':
        assert state['optimizers'][0]['param_groups'][0]['fused'] is True


@pytest.mark.slow
def test_compile_logs_its_time(plain_run):
    root, data, _ = plain_run
    _train(root, data, 'compile_log', compile=True)
    log = next((root / 'experiments' / 'compile_log').glob('train_*.log')).read_text()
    assert re.search(r'train:compile: the first step took \d+\.\d s', log)


@pytest.mark.parametrize('train, message', [
    ({'compile': 'yes'}, "train:compile is 'yes'; use true or false"),
    ({'amp': 'fp8'}, "train:amp is 'fp8'; use bf16 or fp16"),
    ({'compile': True, 'qat': {'start_iter': 1}}, 'drop train:compile and train:amp from a QAT run'),
])
def test_bad_switches_are_named(train, message):
    with pytest.raises(UserError, match=message):
        step_options(train)


def test_switches_default_to_the_plain_step():
    options = step_options({})
    assert (options.compile, options.amp) == (False, None)
    assert not options.grad_scaler(torch.device('cpu')).is_enabled()
    with options.autocast(torch.device('cpu')):
        assert torch.nn.functional.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 1, 1)).dtype == torch.float32
    with step_options({'amp': 'bf16'}).autocast(torch.device('cpu')):
        assert torch.nn.functional.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 1, 1)).dtype == torch.bfloat16


@pytest.mark.slow
def test_a_missing_compiler_is_one_line_naming_the_switch(tmp_path, monkeypatch):
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor.cpp, 'cxx', ('/nonexistent/g++',))
    monkeypatch.setattr(inductor, 'force_disable_caches', True)  # a cached kernel would need no compiler
    torch._dynamo.reset()  # nor would a graph an earlier test compiled in this process
    data = write_edsr_pairs(tmp_path / 'data', 2, [(40, 36), (36, 44)])
    with pytest.raises(UserError, match=r'train:compile failed: .*C\+\+ compiler.*set train:compile: false'):
        _train(tmp_path, data, 'no_compiler', compile=True)


def test_the_cpu_only_cuda_notice_is_dropped_and_nothing_else():
    import logging

    from core.training.models.fast_step import quiet_cpu_only_cuda_notice

    quiet_cpu_only_cuda_notice()
    quiet_cpu_only_cuda_notice()  # once is enough; twice adds nothing
    logger = logging.getLogger('torch.utils.cpp_extension')
    assert len(logger.filters) == 1
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)  # torch's loggers do not propagate to the root, where caplog listens
    try:
        logger.warning("No CUDA runtime is found, using CUDA_HOME='/usr/local'")
        logger.warning('a real problem')
    finally:
        logger.removeHandler(handler)
    assert seen == ['a real problem']


def test_only_autocast_outputs_are_cast_to_float32():
    from core.training.models.fast_step import float_outputs

    double, half = torch.rand(2, dtype=torch.float64), torch.rand(2).to(torch.bfloat16)
    assert float_outputs(double).dtype == torch.float64  # a float64 run keeps its precision
    assert [o.dtype for o in float_outputs((half, double))] == [torch.float32, torch.float64]
    assert float_outputs(half.float()).dtype == torch.float32


@pytest.mark.parametrize(('amp', 'isa', 'warns'), [
    ('bf16', {'avx2': True}, True),                      # an AVX2-only CPU emulates bf16
    ('bf16', {'avx512_bf16': True}, False),
    ('bf16', {'amx_bf16': True}, False),
    ('fp16', {'avx2': True}, False),
    (None, {}, False),
])
def test_bf16_on_a_cpu_without_native_bf16_is_named_in_one_line(amp, isa, warns):
    from core.training.models.fast_step import StepOptions, amp_warning

    warning = amp_warning(StepOptions(amp=amp), torch.device('cpu'), isa)
    assert (warning is not None) == warns
    if warns:
        assert '\n' not in warning and 'train:amp=null' in warning
