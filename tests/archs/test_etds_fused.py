"""ETDS trained in its fused form: one conv per layer, the same function and gradients as the two streams."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models import build_model

from conftest import perturb, tiny_etds, training_opt, write_edsr_pairs

FAMILIES = ['ETDS', 'ETDSAblationResidual', 'ETDSAblationAdvancedResidual']


def pair(arch: str, scale: int, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    net = build_network({**tiny_etds(scale), 'type': arch, 'num_block': 3, 'num_feat': 12, 'num_residual_feat': 4})
    perturb(net, 0.1, seed).double().train()
    streams = copy.deepcopy(net)
    streams.fused = False
    return net, streams


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


@pytest.mark.parametrize('scale', [2, 3, 4])
@pytest.mark.parametrize('arch', FAMILIES)
def test_fused_equals_the_streams_in_outputs_and_gradients(arch, scale):
    fused, streams = pair(arch, scale)
    x = torch.rand(2, 3, 11, 13, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    gt = torch.rand(2, 3, 11 * scale, 13 * scale, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    grads = []
    for net in (fused, streams):
        sr, res = net(x)
        loss = (sr - gt).abs().mean() + 0.5 * (res - gt).abs().mean()
        loss.backward()
        grads.append({name: p.grad for name, p in net.named_parameters()})
    for out_fused, out_streams in zip(fused(x), streams(x), strict=True):
        assert relative(out_fused, out_streams) <= 1e-12
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert relative(grads[0][name], grads[1][name]) <= 1e-9, name
    absent = {'ETDS': 'advanced_residual_convs', 'ETDSAblationResidual': 'add_residual_convs',
              'ETDSAblationAdvancedResidual': None}[arch]
    assert absent is None or not any(absent in name for name in grads[0])


def test_fused_training_equals_the_streams_frozen_then_unfrozen(tmp_path):
    """ETDSModel steps (Adam, EMA, residual frozen before iteration 2 by dropping its gradients) in float64."""
    data_root = write_edsr_pairs(tmp_path / 'data', 2, [(34, 30)])
    opt = training_opt(data_root, total_iter=4) | {'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1}
    models = []
    for fused in (True, False):
        torch.manual_seed(0)
        model = build_model(copy.deepcopy(opt))
        for net in (model.net_g, model.net_g_ema):
            net.double()
            net.fused = fused
        models.append(model)
    generator = torch.Generator().manual_seed(3)
    frozen_before = [p.detach().clone() for p in models[0].residual_params]
    for step in range(1, 5):
        batch = {'lq': torch.rand(2, 3, 8, 8, generator=generator, dtype=torch.float64),
                 'gt': torch.rand(2, 3, 16, 16, generator=generator, dtype=torch.float64)}
        for model in models:
            model.feed_data(batch)
            model.optimize_parameters(step)
        for a, b in zip(models[0].net_g.parameters(), models[1].net_g.parameters(), strict=True):
            assert relative(a, b) <= 1e-9
        unchanged = all(torch.equal(a, b) for a, b in zip(models[0].residual_params, frozen_before, strict=True))
        assert unchanged == (step < 2)  # fixed_residual_model_iters = 2: iteration 2 is the first to update it


def test_fused_is_the_default_and_checkpoints_keep_the_official_keys():
    net = build_network(tiny_etds())
    assert net.fused
    assert 'conv_residual_first.weight' in net.state_dict() and 'add_residual_convs.0.weight' in net.state_dict()
    assert 'fused' not in net.init_args


@pytest.mark.slow
def test_training_benchmark_prints_both_forms_their_ratio_and_the_peak_fraction():
    from conftest import run_repo_script

    result = run_repo_script('scripts/benchmark_training.py', '--family', 'etds', '--rounds', '1', '--lq-size', '16',
                             '--no-compile')
    assert result.returncode == 0, result.stderr
    assert 'fp32 GEMM peak (2048²): torch.mm' in result.stdout and 'ISA:' in result.stdout
    assert result.stdout.count('of the fp32 peak') == 2 and 'the dual stream step' in result.stdout
    assert re.search(r'fused +[\d.]+ ms/step +[\d.]+x .*outputs agree to \d\.\de-0[6-9]', result.stdout)
