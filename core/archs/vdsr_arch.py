"""VDSR: 20 bias-free 3×3 convs with ReLU on the bicubic-upsampled Y channel, plus a global residual.

`upscale` > 1 bicubic-upsamples the input first (MATLAB-style imresize, as a fixed conv), so the model runs on
ordinary LR test sets; training feeds already-upsampled patches with upscale 1, which is how one model
serves x2, x3 and x4. `widths` gives each hidden layer's width, which filter pruning makes uneven.
"""

from __future__ import annotations

import math

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from core.archs.detection import State, count_indexed, raw_layout
from core.archs.network import SRNetwork
from core.archs.shared import BicubicUpsample
from core.errors import UserError

DEFAULT_WIDTHS = [64] * 19  # the input conv and 18 middle convs


class ConvReLU(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


@ARCH_REGISTRY.register()
class VDSR(SRNetwork):
    """Conv3×3(1→64)+ReLU, 18 × [Conv3×3(64→64)+ReLU], Conv3×3(64→1), plus the input; no biases, He-normal init."""

    def __init__(self, upscale: int = 1, widths: list[int] | None = None, num_channels: int = 1) -> None:
        super().__init__()
        widths = list(DEFAULT_WIDTHS if widths is None else widths)
        if len(widths) < 1 or min(widths) < 1:
            raise UserError(f'VDSR widths must be positive, one per hidden layer (got {widths})')
        self.upscale = upscale
        self.upsample = BicubicUpsample(upscale)
        self.input = nn.Conv2d(num_channels, widths[0], 3, padding=1, bias=False)
        self.residual_layer = nn.Sequential(*(ConvReLU(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        self.output = nn.Conv2d(widths[-1], num_channels, 3, padding=1, bias=False)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # He-normal, as the paper
                n = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / n))

    @property
    def hidden_convs(self) -> list[nn.Conv2d]:
        """The convs followed by ReLU (the input conv and the middle ones): what widths and pruning act on."""
        return [self.input, *(block.conv for block in self.residual_layer)]

    @property
    def widths(self) -> list[int]:
        return [conv.out_channels for conv in self.hidden_convs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upscale > 1:
            x = self.upsample(x)
        return self.output(self.residual_layer(F.relu(self.input(x)))) + x


@raw_layout('VDSR', required=('input.weight', 'output.weight'))
def vdsr_args(state: State) -> dict | None:
    """The widths (uneven after pruning) from the shapes; the upscale is how it is run, not a weight: 1."""
    middle = count_indexed(state, 'residual_layer.{}.conv.weight')
    widths = [state['input.weight'].shape[0]] + [state[f'residual_layer.{i}.conv.weight'].shape[0]
                                                  for i in range(middle)]
    return {'widths': widths, 'num_channels': state['input.weight'].shape[1]}
