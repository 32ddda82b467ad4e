"""Folding parallel and sequential branches into one k×k convolution (ECB, linear blocks).

Every function is differentiable, so collapsed training calls the same fold the converter uses.
"""

from __future__ import annotations

import torch

from core.reparam.kernels import Conv


def sobel_x(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sobel-x: column 0 is [1, 2, 1], column 2 is [-1, -2, -1]."""
    return torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], dtype=dtype)


def sobel_y(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sobel-y: the transpose of Sobel-x."""
    return sobel_x(dtype).t().contiguous()


def laplacian(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=dtype)


def depthwise_as_full(weight: torch.Tensor) -> torch.Tensor:
    """A depthwise kernel [C, 1, k, k] as the equivalent dense kernel [C, C, k, k] (zero off the diagonal)."""
    channels = weight.shape[0]
    eye = torch.eye(channels, dtype=weight.dtype, device=weight.device)
    return eye[:, :, None, None] * weight  # [o, i] = δ(o, i)·w[o]


def compose_1x1_kxk(first: Conv, second: Conv) -> Conv:
    """conv_k×k(conv_1×1(x)) as one k×k conv, exact at the borders when the 1×1 output is padded with its bias.

    K[o, i] = Σ_m K2[o, m]·K1[m, i];  b = b2 + Σ_{m,u,v} K2[o, m, u, v]·b1[m].
    """
    k1, b1 = first
    k2, b2 = second
    weight = torch.einsum('omuv,mi->oiuv', k2, k1[:, :, 0, 0])
    bias = b2 + torch.einsum('omuv,m->o', k2, b1)
    return weight, bias


def compose_kxk_1x1(first: Conv, second: Conv) -> Conv:
    """conv_1×1(conv_k×k(x)) as one k×k conv: SESR's linear block. Exact everywhere (the 1×1 is pointwise).

    K[o, i] = Σ_p W2[o, p]·W1[p, i];  b = W2·b1 + b2 (a real bias, never spread over the taps).
    """
    k1, b1 = first
    k2, b2 = second
    w2 = k2[:, :, 0, 0]
    return torch.einsum('op,piuv->oiuv', w2, k1), b2 + w2 @ b1


def compose_1x1_depthwise(first: Conv, depthwise: Conv) -> Conv:
    """conv_dw(conv_1×1(x)) as one k×k conv (bias-padded like `compose_1x1_kxk`), without a dense C×C×k×k product.

    K[o, i] = D[o]·K1[o, i];  b = b_dw + b1·ΣD[o]. Equal to compose_1x1_kxk(first, (depthwise_as_full(D), b_dw)).
    """
    k1, b1 = first
    dw, b_dw = depthwise
    return dw * k1, b_dw + b1 * dw.sum(dim=(1, 2, 3))


def sum_convs(*convs: Conv) -> Conv:
    """Parallel convolutions of one input (same kernel size), summed: weights and biases add."""
    return torch.stack([w for w, _ in convs]).sum(0), torch.stack([b for _, b in convs]).sum(0)
