"""GPTQ rounding: results on the runtime's own int8 grid, equal to nearest rounding on uncorrelated inputs, a
smaller output error on correlated ones, and a network rounded layer by layer that beats nearest rounding."""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch.nn import functional as F

from conftest import deployable
from core.deploy.int8_grid import on_grid, row_scales
from core.deploy.rounding import gptq_round, refit_to_quantized_inputs, round_weights


def _weight(rows: int = 6, columns: int = 27, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = 0.02 * torch.randn(rows, columns, generator=g, dtype=torch.float64)
    w[:, 13] = 1.0  # an identity tap beside small corrections: the rows that carry an image
    return w


def _correlated(columns: int = 27, samples: int = 4000, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(samples, 1, generator=g, dtype=torch.float64)  # a smooth image: every tap near one value
    return base + 0.05 * torch.randn(samples, columns, generator=g, dtype=torch.float64)


def test_gptq_weights_lie_on_the_grid_the_observer_picks():
    w = _weight()
    x = _correlated()
    rounded = gptq_round(w, x.T @ x / len(x))
    assert torch.equal(row_scales(rounded), row_scales(w))  # every row keeps its largest weight, so its step
    assert torch.equal(on_grid(rounded), rounded)  # the runtime's nearest rounding reproduces it exactly


def test_gptq_is_nearest_rounding_on_uncorrelated_inputs():
    w = _weight()
    assert torch.equal(gptq_round(w, torch.eye(27, dtype=torch.float64)), on_grid(w))


def test_refit_keeps_the_weights_when_inputs_are_exact():
    w, x = _weight(), _correlated()
    moment = x.T @ x / len(x)
    assert torch.allclose(refit_to_quantized_inputs(w, moment, moment), w, atol=5e-4)  # only the damping moves it


def test_refit_leaves_inputs_calibration_never_saw():
    w, x = _weight(), _correlated()
    x[:, 4] = 0  # a channel dark on every calibration patch
    refitted = refit_to_quantized_inputs(w, x.T @ x / len(x), x.T @ x / len(x))
    assert torch.equal(refitted[:, 4], w[:, 4])


def test_refit_wins_back_what_the_inputs_lost():
    w, x = _weight(), _correlated()
    xq = torch.round(x * 8) / 8  # a coarse grid: the error the layers before leave in the activations
    refitted = refit_to_quantized_inputs(w, xq.T @ xq / len(x), x.T @ xq / len(x))
    before = (xq @ w.T - x @ w.T).pow(2).mean()
    after = (xq @ refitted.T - x @ w.T).pow(2).mean()
    assert after < 0.7 * before  # 0.65 here
    # the least-squares optimum: no direction of the refitted rows lowers the error further
    gradient = (xq @ refitted.T - x @ w.T).T @ xq / len(x)
    assert float(gradient.abs().max()) < 1e-6


def test_gptq_cancels_the_error_on_correlated_inputs():
    w = _weight()
    x = _correlated()

    def output_error(q: torch.Tensor) -> float:
        return float(((w - q) @ x.T).pow(2).mean())

    nearest, gptq = output_error(on_grid(w)), output_error(gptq_round(w, x.T @ x / len(x)))
    assert gptq < nearest / 5, (gptq, nearest)


def test_a_network_rounded_layer_by_layer_beats_nearest_rounding():
    from torchao.quantization.pt2e.observer import HistogramObserver

    observer = functools.partial(HistogramObserver, dtype=torch.int8, quant_min=-128, quant_max=127,
                                 qscheme=torch.per_tensor_affine, eps=2**-12)
    model = deployable('ETDSForInference')
    clip = model.net.get_submodule('conv_clip')  # as converted: the folded clamp, v = ReLU(1 − u)
    with torch.no_grad():
        clip.weight.copy_(-torch.eye(clip.out_channels).view_as(clip.weight))
        clip.bias.fill_(1)
    rng = np.random.default_rng(0)
    smooth = [F.interpolate(torch.from_numpy(rng.random((1, 3, 6, 5), dtype=np.float32)), size=(24, 20),
                            mode='bicubic', align_corners=False).clamp(0, 1).numpy() for _ in range(4)]
    rounded, report = round_weights(model.net, smooth, observer)
    assert [layer.name for layer in report] == ['conv_first', *[f'backbone_convs.{i}' for i in range(4)],
                                                'conv_last', 'conv_clip']
    for name, conv in rounded.named_modules():
        if isinstance(conv, torch.nn.Conv2d):  # whole int8 codes on the rows' steps (float32 keeps them to 1e-4)
            codes = conv.weight.detach() / row_scales(conv.weight.detach()).view(-1, 1, 1, 1)
            assert (codes - codes.round()).abs().max() < 1e-4, name
    # the clamp's −I stays −I: both runtimes read its input on [0, 1]
    assert torch.equal(rounded.get_submodule('conv_clip').weight, clip.weight)
    nearest = model.net.__class__(**model.args)
    nearest.load_state_dict(model.net.state_dict())
    with torch.no_grad():
        for conv in nearest.modules():
            if isinstance(conv, torch.nn.Conv2d):
                conv.weight.copy_(on_grid(conv.weight))
    x = torch.from_numpy(np.concatenate(smooth))
    with torch.no_grad():
        reference = model.net(x)
        assert (rounded(x) - reference).pow(2).mean() < (nearest(x) - reference).pow(2).mean()
    assert sum(layer.rounded_error for layer in report) < sum(layer.nearest_error for layer in report)


def test_the_layer_report_names_every_conv_and_what_int8_costs_it(shared_set5):
    from core.deploy.sensitivity import format_sensitivity, layer_sensitivity

    model = deployable('ECBSRET')  # x3, PReLU: its conv outputs are stored before the activation too
    rng = np.random.default_rng(0)
    calibration = [rng.random((1, 3, 24, 20), dtype=np.float32) for _ in range(2)]
    reference, rows = layer_sensitivity(model.net, calibration, str(shared_set5), 3)
    assert [row.layer for row in rows] == [f'backbone.{i}.0' for i in range(5)]
    assert rows[-1].output_db is None and all(row.output_db is not None for row in rows[:-1])  # the output: n/a
    assert all(row.weights_db <= 0.01 for row in rows)
    assert all(0 < row.min_levels <= row.median_levels for row in rows[:-1])
    text = format_sensitivity('as it is', reference, rows)
    assert text.count('\n') == len(rows) + 1 and text.splitlines()[-1].split()[2] == 'n/a'
