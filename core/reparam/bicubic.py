"""MATLAB bicubic upsampling by an integer factor as a depthwise 5×5 conv and PixelShuffle.

For an integer scale s, output pixel i·s + p depends on LR pixels i−2 … i+2 with weights that depend only on
the phase p, so imresize is one fixed conv (s² phases per channel) after MATLAB's symmetric border padding.
The weights come from basicsr's own `calculate_weights_indices`, so they are MATLAB's by construction.
"""

from __future__ import annotations

import torch
from basicsr.utils.matlab_functions import calculate_weights_indices

RADIUS = 2  # the cubic kernel is 4 LR pixels wide: taps at offsets −2 … +2 cover every phase


def bicubic_phase_taps(scale: int) -> torch.Tensor:
    """(s, 5) weights: row p holds the taps at offsets −2 … +2 for output phase p (float64)."""
    length = 4 * RADIUS + 4
    weights, indices, sym_start, _ = calculate_weights_indices(length, length * scale, scale, 'cubic', 4, True)
    centre = length // 2
    taps = torch.zeros(scale, 2 * RADIUS + 1, dtype=torch.float64)
    for phase in range(scale):
        row = centre * scale + phase
        for weight, index in zip(weights[row], indices[row], strict=True):
            taps[phase, int(index) - sym_start - centre + RADIUS] += float(weight)
    return taps


def bicubic_upsample_kernel(scale: int) -> torch.Tensor:
    """(s², 1, 5, 5) depthwise kernel: output channel py·s + px is the separable product of two phase taps."""
    taps = bicubic_phase_taps(scale)
    kernel = taps[:, None, :, None] * taps[None, :, None, :]  # (py, px, dy, dx)
    return kernel.reshape(scale * scale, 1, 2 * RADIUS + 1, 2 * RADIUS + 1)


def symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """MATLAB's border rule for imresize: mirror with the edge pixel repeated (index −1 → 0, −2 → 1).

    Built from one-pixel slices and a concatenation rather than `flip`, which some TFLite lowerings reject, with
    constant indices (negative from the end) so that no exporter sees an index computed from the image size:
    ncnn has no layer for that.
    """
    for dim in (-2, -1):
        before = [_slice(x, dim, i, i + 1) for i in reversed(range(pad))]
        after = [_slice(x, dim, -1 - i, -i or None) for i in range(pad)]
        x = torch.cat([*before, x, *after], dim=dim)
    return x


def _slice(x: torch.Tensor, dim: int, start: int, stop: int | None) -> torch.Tensor:
    index = [slice(None)] * x.dim()
    index[dim] = slice(start, stop)
    return x[tuple(index)]
