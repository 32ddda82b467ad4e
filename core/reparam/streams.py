"""Merging parallel streams of convolutions into one wider convolution.

Two streams x and r, each followed by ReLU, are one stream [x; r] followed by ReLU: ReLU acts per
channel, so concatenation commutes with it. The cross connections become off-diagonal blocks.
"""

from __future__ import annotations

import torch

from core.reparam.kernels import Conv


def stack_outputs(*convs: Conv) -> Conv:
    """Convolutions of the same input, run as one: outputs are concatenated in the given order."""
    return torch.cat([w for w, _ in convs]), torch.cat([b for _, b in convs])


def join_inputs(*convs: Conv) -> Conv:
    """Σ_i conv_i(x_i) as one convolution of the concatenated input [x_1; x_2; ...]."""
    weight = torch.cat([w for w, _ in convs], dim=1)
    bias = torch.stack([b for _, b in convs]).sum(0)
    return weight, bias


def merge_dual_stream(backbone: Conv, residual: Conv, residual_to_backbone: Conv | None = None,
                      backbone_to_residual: Conv | None = None) -> Conv:
    """One convolution of [x; r] computing [B∗x + A∗r; D∗x + R∗r], i.e. the block matrix [[B, A], [D, R]].

    A (residual→backbone) and D (backbone→residual) are optional; a missing one is a zero block.
    """
    b_weight, b_bias = backbone
    r_weight, r_bias = residual
    k = b_weight.shape[-1]
    zeros = b_weight.new_zeros
    top_right = residual_to_backbone or (zeros(b_weight.shape[0], r_weight.shape[1], k, k),
                                         zeros(b_weight.shape[0]))
    bottom_left = backbone_to_residual or (zeros(r_weight.shape[0], b_weight.shape[1], k, k),
                                           zeros(r_weight.shape[0]))
    top = join_inputs(backbone, top_right)
    bottom = join_inputs(bottom_left, residual)
    return stack_outputs(top, bottom)
