"""How far, in LR pixels, an output pixel can see: the overlap tiles need to be stitched without seams.

Measured, not declared, so it holds for every family and for pruned or re-laid-out networks alike: on a copy
whose conv weights and biases are made positive (no ReLU is ever dead, nothing cancels), a unit impulse at the
centre of a constant image changes exactly the outputs whose receptive field contains it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from core.archs.shared import first_output


@torch.no_grad()
def _all_alive(net: nn.Module) -> nn.Module:
    probe = copy.deepcopy(net).double().eval()
    for module in probe.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.weight.copy_(module.weight.abs() + 0.01)
            if module.bias is not None:
                module.bias.copy_(module.bias.abs() + 0.01)
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
        changed = (first_output(probe(x)) - base).abs().amax(dim=(0, 1)) > 1e-12
        rows, cols = (torch.nonzero(changed.any(dim=d)).flatten() // scale for d in (1, 0))
        radius = int(max((rows - centre).abs().max(), (cols - centre).abs().max()))
        if radius < centre - 1:  # the field fits inside the probe image: the measure is not cut off
            return radius
        size = 2 * size + 1
