"""What an int8 runtime does to a tensor, in PyTorch: per-channel symmetric weights, per-tensor activations.

One definition for everything that simulates int8 before exporting (rescaling, GPTQ rounding, the layer report),
so each simulates the same grid the runtimes use: litert's quantizer and onnxruntime both quantize weights to
−127 … 127 with step max|w| / 127 per output channel, and activations per tensor with a scale and zero point.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from core.deploy.optional import require

WEIGHT_LEVELS = 127  # symmetric int8 weights: −127 … 127
SCALE_FLOOR = 2**-12  # the observers' eps: a row whose largest weight is below 127·eps gets this step
PIXEL_QPARAMS = (1 / 255, -128)  # the pinned int8 input and output of every exported file (q = u8 − 128)
HISTOGRAM_BINS = 2048  # as torchao's histogram observer, whose histogram LiteRT's path fits the same way
RANGE_CANDIDATES = 24  # clipping points tried on each side of a pre-activation histogram
SUBSAMPLES = 16  # points per histogram bin at which the error is summed


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


def range_for_activation(histogram: torch.Tensor, low: float, high: float,
                         activation: Callable[[torch.Tensor], torch.Tensor]) -> tuple[float, float]:
    """The int8 range of a pre-activation tensor that minimises the error after the activation.

    tanh, sigmoid and a PReLU of small slope flatten what lies far out, so levels spent there are wasted: an
    ESPCN conv output spans ±275 before its tanh, and a min–max or histogram range leaves [−3, 3], where tanh
    is not flat, three levels. Candidates clip each side at a quantile of the calibration histogram; the error of
    each is summed over the histogram's bins, weighted by their counts.
    """
    edges = torch.linspace(low, high, histogram.numel() + 1, dtype=torch.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    cumulative = histogram.double().cumsum(0) / histogram.double().sum()
    # Values spread evenly inside each bin: a wide histogram's bins are coarser than the int8 steps inside them.
    offsets = (torch.arange(SUBSAMPLES, dtype=torch.float64) + 0.5) / SUBSAMPLES
    points = (edges[:-1, None] + offsets * (edges[1] - edges[0])).flatten()
    weights = (histogram.double()[:, None] / SUBSAMPLES).expand(-1, SUBSAMPLES).flatten()
    exact = activation(points)
    quantiles = torch.logspace(-7, -0.5, RANGE_CANDIDATES, dtype=torch.float64)
    lows = {min(float(centres[torch.searchsorted(cumulative, q)]), 0.0) for q in quantiles} | {min(low, 0.0)}
    highs = {max(float(centres[torch.searchsorted(cumulative, 1 - q).clamp_max(len(centres) - 1)]), 0.0)
             for q in quantiles} | {max(high, 0.0)}
    best, best_error = (min(low, 0.0), max(high, 0.0)), float('inf')
    for lo in lows:
        for hi in highs:
            if hi - lo <= 0:
                continue
            scale, zero = qparams_for_range(lo, hi)
            q = (torch.clamp(torch.round(points / scale) + zero, -128, 127) - zero) * scale
            error = float((weights * (activation(q) - exact) ** 2).sum())
            if error < best_error:
                best, best_error = (lo, hi), error
    return best


def qparams_for_range(low: float, high: float) -> tuple[float, int]:
    """Per-tensor int8 (scale, zero point) that spans [low, high] (low ≤ 0 ≤ high)."""
    scale = (high - low) / 255
    return scale, int(round(-128 - low / scale))


def range_of_qparams(scale: float, zero_point: int) -> tuple[float, float]:
    """The real range int8 (−128 … 127) covers with (scale, zero point)."""
    return (-128 - zero_point) * scale, (127 - zero_point) * scale


def fitted_range(values: torch.Tensor,
                 activation: Callable[[torch.Tensor], torch.Tensor]) -> tuple[float, float] | None:
    """`range_for_activation` on the histogram of these calibration values (None: they are constant)."""
    low, high = float(values.min()), float(values.max())
    if not high > low:
        return None
    histogram = torch.histc(values.double(), bins=HISTOGRAM_BINS, min=low, max=high)
    return range_for_activation(histogram, low, high, activation)


def saturating_activation(kind: str, slopes: torch.Tensor | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation whose input range `range_for_activation` fits: 'tanh', 'sigmoid', or 'prelu' at the mean of
    its `slopes` (the range is per tensor, so per-channel slopes are averaged)."""
    if kind == 'tanh':
        return torch.tanh
    if kind == 'sigmoid':
        return torch.sigmoid
    slope = float(slopes.detach().mean())
    return lambda v: torch.where(v > 0, v, slope * v)


def activation_observer() -> Callable[[], nn.Module]:
    """The per-tensor observer that stands for the runtimes' activation ranges, as int8 (−128 … 127): LiteRT's
    quantizer calibrates this histogram; onnxruntime receives the ranges it picks (core.deploy.ort_quantization)."""
    observers = require('torchao.quantization.pt2e.observer', 'torchao')
    return functools.partial(observers.HistogramObserver, dtype=torch.int8, quant_min=-128, quant_max=127,
                             qscheme=torch.per_tensor_affine, eps=SCALE_FLOOR)
