"""What Real-ESRGAN-ncnn-vulkan (and Upscayl, which runs it) does around a model, re-done in NumPy to measure it.

The app reads 8-bit pixels, cuts the image into `tilesize` squares, gives each tile `prepadding` = 10 pixels of
context on every side, and where that context falls outside the image it mirrors the image without repeating
the edge pixel (its preprocess shader: x → |x|, then w−1−|x−(w−1)|). Our networks trained with zero padding at
the image border, so the border pixels differ; inside the image, tiles see real neighbours. The output is
written back as 8-bit (×255, +0.5, clamped, truncated).
"""

from __future__ import annotations

import numpy as np

from core.deploy.runtimes import Runtime

PREPADDING = 10  # Real-ESRGAN-ncnn-vulkan's prepadding for every model
TILESIZE = 200  # its default on a GPU with more than 1.9 GB of heap


def mirror_index(index: np.ndarray, length: int) -> np.ndarray:
    """The shader's mirror: reflect about 0 and about length−1, the edge pixel itself not repeated. (Images
    shorter than the padding make the shader read outside the image; here they are clipped to it.)"""
    index = np.abs(index)
    return np.clip((length - 1) - np.abs(index - (length - 1)), 0, length - 1)


def app_forward(runtime: Runtime, lq: np.ndarray, tilesize: int = TILESIZE,
                prepadding: int = PREPADDING) -> np.ndarray:
    """1×C×H×W float image in [0, 1] → the app's 8-bit output as float in [0, 1]."""
    scale = runtime.scale
    pixels = np.round(np.clip(lq, 0, 1) * 255) / 255  # the app reads 8-bit pixels
    height, width = lq.shape[-2:]
    out = np.empty((1, lq.shape[1], height * scale, width * scale), np.float32)
    for y0 in range(0, height, tilesize):
        y1 = min(y0 + tilesize, height)
        rows = mirror_index(np.arange(y0 - prepadding, y1 + prepadding), height)
        for x0 in range(0, width, tilesize):
            x1 = min(x0 + tilesize, width)
            cols = mirror_index(np.arange(x0 - prepadding, x1 + prepadding), width)
            tile = np.ascontiguousarray(pixels[:, :, rows][:, :, :, cols], dtype=np.float32)
            result = runtime(tile)[:, :, prepadding * scale:(prepadding + y1 - y0) * scale,
                                   prepadding * scale:(prepadding + x1 - x0) * scale]
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = result
    return np.floor(np.clip(out * 255 + 0.5, 0, 255)) / 255
