"""Bicubic upsampling as a network, so the baseline runs through the same test pipeline and metrics."""

from __future__ import annotations

import torch
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


@ARCH_REGISTRY.register()
class Bicubic(nn.Module):
    """MATLAB-style bicubic upsampling (basicsr's `imresize`), with no weights."""

    def __init__(self, upscale: int) -> None:
        super().__init__()
        self.upscale = upscale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([imresize(img, self.upscale) for img in x])
