"""What an int8 runtime does to a tensor, in PyTorch: per-channel symmetric weights, per-tensor activations.

One definition for everything that simulates int8 before exporting (rescaling, GPTQ rounding, the layer report),
so each simulates the same grid the runtimes use: litert's quantizer and onnxruntime both quantize weights to
−127 … 127 with step max|w| / 127 per output channel, and activations per tensor with a scale and zero point.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

WEIGHT_LEVELS = 127  # symmetric int8 weights: −127 … 127
SCALE_FLOOR = 2**-12  # the observers' eps: a row whose largest weight is below 127·eps gets this step
PIXEL_QPARAMS = (1 / 255, -128)  # the pinned int8 input and output of every exported file (q = u8 − 128)


def row_scales(weight: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """The per-output-channel step a symmetric int8 observer picks: max|w| / 127 (floored at its eps)."""
    return (weight.abs().transpose(0, axis).flatten(1).amax(dim=1) / WEIGHT_LEVELS).clamp_min(SCALE_FLOOR)


def on_grid(weight: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """Nearest rounding onto the rows' int8 grids (`axis` indexes the output channels: 1 for ConvTranspose2d)."""
    shape = [1] * weight.dim()
    shape[axis] = -1
    scale = row_scales(weight, axis).view(shape)
    return torch.clamp(torch.round(weight / scale), -WEIGHT_LEVELS, WEIGHT_LEVELS) * scale


def fake_quantize(x: torch.Tensor, qparams: tuple[float, int]) -> torch.Tensor:
    """x through per-tensor int8 with (scale, zero point): quantized, clamped to −128 … 127, dequantized."""
    scale, zero_point = qparams
    return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, -128, 127)


def observed_qparams(x: torch.Tensor, observer: Callable[[], nn.Module]) -> tuple[float, int]:
    """The per-tensor int8 (scale, zero point) an observer picks for this calibration tensor."""
    module = observer()
    module(x.detach().float())
    scale, zero_point = module.calculate_qparams()
    return float(scale), int(zero_point)
