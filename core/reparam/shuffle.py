"""PixelShuffle layouts: one PixelShuffle(r) versus successive smaller ones (e.g. two PixelShuffle(2) for x4).

Both place every output channel of the last conv at some sub-pixel; they only disagree on which channel
goes where. Reordering the last conv's output channels therefore turns one layout into the other exactly.
Some export paths (the SESR authors' TFLite route, NPUs limited to block size 2) need the stepwise one.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

import torch
from torch.nn import functional as F

from core.reparam.kernels import Conv


def stepwise_shuffle_order(channels: int, steps: Sequence[int]) -> torch.Tensor:
    """`order[s]`: the input channel that PixelShuffle(steps[0]), then steps[1], ... put where PixelShuffle(r) puts s.

    `channels` counts the input channels of the shuffle (out_ch · r²) with r = prod(steps).
    """
    scale = prod(steps)
    if channels % (scale * scale):
        raise ValueError(f'{channels} channels cannot be pixel-shuffled by {scale}')
    index = torch.arange(channels).view(1, channels, 1, 1)
    for step in steps:
        index = F.pixel_shuffle(index, step)
    return F.pixel_unshuffle(index, scale).flatten()


def to_stepwise_shuffle(conv: Conv, steps: Sequence[int]) -> Conv:
    """The conv whose output, shuffled by each of `steps` in turn, equals PixelShuffle(prod(steps)) of `conv`'s."""
    weight, bias = conv
    inverse = torch.argsort(stepwise_shuffle_order(weight.shape[0], steps)).to(weight.device)
    return weight[inverse], bias[inverse]


def from_stepwise_shuffle(conv: Conv, steps: Sequence[int]) -> Conv:
    """The inverse of `to_stepwise_shuffle`: back to the layout of a single PixelShuffle(prod(steps))."""
    weight, bias = conv
    order = stepwise_shuffle_order(weight.shape[0], steps).to(weight.device)
    return weight[order], bias[order]
