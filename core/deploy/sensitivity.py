"""Where int8 loses: for each conv layer, the dB lost by quantizing only its weights, and only its output, and how
many int8 levels its output's channels get. Simulated in PyTorch with the quantizers the runtimes use (per-channel
symmetric weights, per-tensor histogram-calibrated activations), before and after `core.deploy.ptq`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.deploy.equalization import apply_activation, conv_pairs
from core.deploy.int8_grid import activation_observer, fake_quantize, observed_qparams, on_grid
from core.deploy.paired_psnr import y_psnr
from core.deploy.ptq import working_patches


@dataclass(frozen=True)
class LayerSensitivity:
    layer: str
    weights_db: float  # Y-PSNR change with only this layer's weights in int8 (nearest rounding)
    output_db: float | None  # ... with only the tensor(s) it hands to the next conv in int8 (None: no such conv
    # through ReLU/PReLU: the network's output, pinned to pixels, or an op such as tanh)
    min_levels: float | None  # int8 levels the narrowest channel of that tensor spans
    median_levels: float | None


def _levels(tensor: torch.Tensor, scale: float) -> tuple[float, float]:
    ranges = tensor.transpose(0, 1).flatten(1)
    spans = (ranges.amax(dim=1) - ranges.amin(dim=1)) / scale
    spans = spans[spans > 0]
    return (float(spans.min()), float(spans.median())) if len(spans) else (0.0, 0.0)


@torch.no_grad()
def layer_sensitivity(net: nn.Module, calibration: Sequence[np.ndarray], dataroot: str, scale: int,
                      color: str | None = None) -> tuple[float, list[LayerSensitivity]]:
    """(fp32 Y-PSNR, one row per conv layer in forward order)."""
    net = net.float().eval()
    reference = y_psnr(net, dataroot, scale, color)
    batch = torch.cat([torch.from_numpy(patch) for patch in working_patches(calibration)])
    observer = activation_observer()
    pairs = {pair.producer: pair for pair in conv_pairs(net)}
    order: list[str] = []
    hooks = [m.register_forward_pre_hook(lambda *_, n=n: order.append(n))
             for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    net(batch[:1])
    for hook in hooks:
        hook.remove()
    rows = []
    for name in dict.fromkeys(order):
        conv = net.get_submodule(name)
        rounded = copy.deepcopy(net)
        target = rounded.get_submodule(name)
        target.weight.copy_(on_grid(target.weight, axis=1 if isinstance(target, nn.ConvTranspose2d) else 0))
        weights_db = y_psnr(rounded, dataroot, scale, color) - reference
        if name not in pairs:
            rows.append(LayerSensitivity(name, weights_db, None, None, None))
            continue
        captured: dict[str, torch.Tensor] = {}
        pair = pairs[name]
        handle = conv.register_forward_hook(lambda _m, _i, out, into=captured: into.__setitem__('conv', out))
        net(batch)
        handle.remove()
        z = captured['conv']
        act = apply_activation(net, pair.activation, z)
        qparams = {'conv': observed_qparams(z, observer), 'activation': observed_qparams(act, observer)}
        stored_before = pair.activation_runs_apart

        def quantize_output(_module, _inputs, out, stored_before=stored_before, qparams=qparams):
            return fake_quantize(out, qparams['conv']) if stored_before else out

        def quantize_consumer_input(_module, args, qparams=qparams):
            return (fake_quantize(args[0], qparams['activation']), *args[1:])

        handles = [conv.register_forward_hook(quantize_output),
                   net.get_submodule(pair.consumer).register_forward_pre_hook(quantize_consumer_input)]
        output_db = y_psnr(net, dataroot, scale, color) - reference
        for handle in handles:
            handle.remove()
        levels = _levels(act, qparams['activation'][0])
        if stored_before:
            levels = min(levels, _levels(z, qparams['conv'][0]))
        rows.append(LayerSensitivity(name, weights_db, output_db, *levels))
    return reference, rows


def format_sensitivity(title: str, reference: float, rows: list[LayerSensitivity]) -> str:
    lines = [f'{title}: {reference:.3f} dB in PyTorch; dB lost with only this in int8, and the int8 levels of its '
             'output',
             f"{'layer':24}{'weights':>10}{'output':>10}{'levels (narrowest / median channel)':>38}"]
    for row in rows:
        output = f"{'n/a':>10}" if row.output_db is None else f'{row.output_db:>+10.3f}'
        levels = '' if row.min_levels is None else f'{row.min_levels:>28.0f} / {row.median_levels:.0f}'
        lines.append(f'{row.layer:24}{row.weights_db:>+10.3f}{output}{levels}')
    return '\n'.join(lines)
