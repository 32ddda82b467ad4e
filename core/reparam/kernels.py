"""Kernel building blocks shared by every fold."""

from __future__ import annotations

import torch

Conv = tuple[torch.Tensor, torch.Tensor]
"""A convolution as (weight [out, in, k, k], bias [out])."""


def identity_kernel(channels: int, kernel_size: int = 3, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A k×k kernel whose convolution (zero padding k//2) returns its input unchanged."""
    weight = torch.zeros(channels, channels, kernel_size, kernel_size, dtype=dtype)
    centre = kernel_size // 2
    weight[torch.arange(channels), torch.arange(channels), centre, centre] = 1
    return weight


def pad_out_channels(conv: Conv, multiple: int, bias_value: float = 0.0) -> Conv:
    """Append zero-weight output channels (bias `bias_value`) up to a multiple of `multiple`.

    Mobile NPUs and delegates run channel counts that are multiples of 4 fastest.
    """
    weight, bias = conv
    extra = -weight.shape[0] % multiple
    if extra == 0:
        return weight, bias
    weight = torch.cat([weight, weight.new_zeros(extra, *weight.shape[1:])])
    bias = torch.cat([bias, bias.new_full((extra,), bias_value)])
    return weight, bias
