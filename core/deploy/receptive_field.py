"""How far, in LR pixels, an output pixel can see: the overlap tiles need to be stitched without seams.

Measured, not declared, so it holds for every family and for pruned or re-laid-out networks alike: on a float64
copy whose conv weights are uniform, positive and sum to 1/2 per output (no ReLU is ever dead, nothing cancels,
nothing saturates a final clamp), an impulse at the centre of a constant image changes exactly the outputs whose
receptive field contains it. Outside that field the arithmetic is identical, so the test is exact inequality.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from core.archs.network import first_output


@torch.no_grad()
def _all_alive(net: nn.Module) -> nn.Module:
    probe = copy.deepcopy(net).double().eval()
    for module in probe.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.weight.fill_(0.5 / module.weight[0].numel())
            if module.bias is not None:
                module.bias.fill_(0.01)
    return probe


@torch.no_grad()
def receptive_radius(net: nn.Module, num_in_ch: int, scale: int, size: int = 33) -> int:
    """The largest LR distance between an input pixel and an output pixel that depends on it."""
    probe = _all_alive(net)
    while True:
        centre = size // 2
        x = torch.full((1, num_in_ch, size, size), 0.25, dtype=torch.float64)
        base = first_output(probe(x))
        x[:, :, centre, centre] += 0.5
        changed = (first_output(probe(x)) != base).any(dim=0).any(dim=0)
        rows, cols = (torch.nonzero(changed.any(dim=d)).flatten() // scale for d in (1, 0))
        radius = int(max((rows - centre).abs().max(), (cols - centre).abs().max()))
        if radius < centre - 1:  # the field fits inside the probe image: the measure is not cut off
            return radius
        size = 2 * size + 1
