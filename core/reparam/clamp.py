"""Folding clamp(y, 0, 1) into two ReLU convolutions, so a plain conv+ReLU net clips its own output.

With ReLU after each:  u = ReLU(1 − y)  (the last conv negated, bias 1 − b)
                       v = ReLU(1 − u)  (a 1×1 conv of weight −I, bias 1)
gives v = clamp(y, 0, 1) exactly: u = max(1 − y, 0), so 1 − u = min(y, 1), and ReLU adds the floor 0.
"""

from __future__ import annotations

import torch

from core.reparam.kernels import Conv


def negate_for_upper_clamp(conv: Conv) -> Conv:
    """The convolution computing 1 − y for y = conv(x)."""
    weight, bias = conv
    return -weight, 1 - bias


def unit_clip_conv(channels: int, dtype: torch.dtype = torch.float32) -> Conv:
    """The 1×1 convolution computing 1 − u channel by channel."""
    weight = -torch.eye(channels, dtype=dtype).reshape(channels, channels, 1, 1)
    return weight, torch.ones(channels, dtype=dtype)


def clamp_tail(conv: Conv) -> tuple[Conv, Conv]:
    """Replace a last conv y by (conv', clip) such that ReLU(clip(ReLU(conv'(x)))) = clamp(y, 0, 1)."""
    negated = negate_for_upper_clamp(conv)
    return negated, unit_clip_conv(negated[0].shape[0], dtype=negated[0].dtype)


def is_unit_clip(weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Whether (weight, bias) is `unit_clip_conv`: a 1×1 conv of weight −I and bias 1. Its input u ≥ 1 gives
    v = 0 whatever u is, so int8 exporters quantize u on [0, 1], the output's range."""
    if bias is None or weight.dim() != 4 or weight.shape[-2:] != (1, 1) or weight.shape[0] != weight.shape[1]:
        return False
    eye = -torch.eye(weight.shape[0], dtype=weight.dtype, device=weight.device).view_as(weight)
    return bool(torch.equal(weight.detach(), eye)) and bool((bias.detach() == 1).all())
