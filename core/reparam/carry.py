"""Equivalent Transformation of a repeated-input shortcut: carry the input through the net in extra channels.

A plain chain  h_0 = x,  h_k = act(conv_k(h_{k-1})),  y = conv_last(h_n) + repeat_interleave(x, s²)
becomes one without the shortcut: every hidden layer gains `num_in_ch` identity channels that copy x (ReLU
and PReLU with slope 0 leave them unchanged because images are ≥ 0), padded with zero channels to a
width multiple; the last conv reads the carried image at its centre tap. The clamp is then folded too.
"""

from __future__ import annotations

import torch

from core.reparam.clamp import clamp_tail
from core.reparam.kernels import Conv, identity_kernel, pad_out_channels
from core.reparam.streams import join_inputs, merge_dual_stream, stack_outputs


def pad_in_channels(conv: Conv, total: int) -> Conv:
    """Append zero input channels up to `total` (the previous layer's padding channels)."""
    weight, bias = conv
    extra = total - weight.shape[1]
    if extra == 0:
        return weight, bias
    return torch.cat([weight, weight.new_zeros(weight.shape[0], extra, *weight.shape[2:])], dim=1), bias


def identity_conv(channels: int, kernel_size: int, like: torch.Tensor) -> Conv:
    weight = identity_kernel(channels, kernel_size, dtype=like.dtype).to(like.device)
    return weight, like.new_zeros(channels)


def repeat_interleave_conv(channels: int, repeats: int, kernel_size: int, like: torch.Tensor) -> Conv:
    """The convolution computing repeat_interleave(x, repeats, dim=1)."""
    weight = like.new_zeros(channels * repeats, channels, kernel_size, kernel_size)
    centre = kernel_size // 2
    rows = torch.arange(channels * repeats)
    weight[rows, rows // repeats, centre, centre] = 1
    return weight, like.new_zeros(channels * repeats)


def carry_hidden_layers(hidden: list[Conv], num_in_ch: int, multiple: int) -> list[Conv]:
    """Hidden convs that also copy the input into `num_in_ch` channels after their own, padded to `multiple`."""
    carried = []
    previous_width = num_in_ch
    for k, conv in enumerate(hidden):
        size = conv[0].shape[-1]
        copy = identity_conv(num_in_ch, size, conv[0])
        merged = stack_outputs(conv, copy) if k == 0 else merge_dual_stream(conv, copy)
        merged = pad_out_channels(pad_in_channels(merged, previous_width), multiple)
        carried.append(merged)
        previous_width = merged[0].shape[0]
    return carried


def fold_shortcut_into_last(last: Conv, num_in_ch: int, upscale: int, in_width: int) -> tuple[Conv, Conv]:
    """conv_last(h) + repeat_interleave(x, s²), reading x from the carry channels, with the clamp folded in.

    Returns (last', clip): ReLU(clip(ReLU(last'(h')))) = clamp(conv_last(h) + repeat(x), 0, 1); the output
    is padded to a multiple of 4 channels, and the extra ones must be dropped before PixelShuffle.
    """
    shortcut = repeat_interleave_conv(num_in_ch, upscale * upscale, last[0].shape[-1], last[0])
    joined = pad_in_channels(join_inputs(last, shortcut), in_width)
    return clamp_tail(pad_out_channels(joined, 4))


def fold_carried_input(hidden: list[Conv], last: Conv, num_in_ch: int, upscale: int, multiple: int) -> list[Conv]:
    """The whole Equivalent Transformation of `act(hidden…) → last + repeat_interleave(x, s²) → clamp`.

    Returns the carried hidden convs, then last' and the 1×1 clip conv: a conv+ReLU chain with no shortcut and
    no clamp. ECBSR, ABPN and ETDSOnlyET all fold this way; only their width multiple differs.
    """
    carried = carry_hidden_layers(hidden, num_in_ch, multiple)
    return [*carried, *fold_shortcut_into_last(last, num_in_ch, upscale, carried[-1][0].shape[0])]
