"""Helpers every converter and detector uses: a conv's tensors, the reference outputs, scale from widths."""

from __future__ import annotations

import math

import torch
from torch import nn

from core.archs.shared import first_output, plain_last_width
from core.reparam import Conv


def conv_params(conv: nn.Conv2d) -> Conv:
    return conv.weight.detach(), conv.bias.detach()


def same_output(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reference for a fold that keeps the output as it is (branches collapsed, nothing else)."""
    return first_output(net(x))


def clamped_output(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reference for an ET form, which also folds the final clamp to [0, 1]."""
    return first_output(net(x)).clamp(0, 1)


def scale_from_channels(channels: int, num_in_ch: int) -> int | None:
    """s where channels = num_in_ch·s², or None when the width is not of that form."""
    scale = math.isqrt(channels // num_in_ch)
    return scale if scale * scale * num_in_ch == channels else None


def scale_from_plain_width(channels: int, num_in_ch: int) -> int | None:
    """s where channels = plain_last_width(num_in_ch, s) (the padded output width of an ET form), or None."""
    return next((s for s in range(1, 9) if plain_last_width(num_in_ch, s) == channels), None)
