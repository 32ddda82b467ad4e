"""Upscale a user's picture with any runtime: colour models on RGB, 1-channel models on Y with bicubic CbCr
(as test.py saves them), alpha upscaled bicubically on its own, bit depth and grayness kept."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from basicsr.utils import bgr2ycbcr

from core.data.colour import bicubic, colour_from_y
from core.deploy.images import Picture, picture_to_array, read_picture
from core.deploy.runtimes import Runtime
from core.deploy.tiling import tiled_forward


def run_on_image(runtime: Runtime, image: np.ndarray, tile: tuple[int, int] | None, pad: int,
                 on_tile: Callable[[], None] | None = None) -> np.ndarray:
    """H×W×C float image → (H·s)×(W·s)×C through the runtime, tiled when asked or when the model is fixed-size."""
    lq = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
    out = tiled_forward(runtime, lq, runtime.scale, tile, pad, runtime.fixed_size, on_tile)
    return out[0].transpose(1, 2, 0)


def upscale_picture(picture: Picture, runtime: Runtime, tile: tuple[int, int] | None, pad: int,
                    on_tile: Callable[[], None] | None = None) -> Picture:
    scale = runtime.scale
    if runtime.num_in_ch == 1:
        y = run_on_image(runtime, bgr2ycbcr(picture.bgr)[..., :1], tile, pad, on_tile)
        bgr = colour_from_y(y, picture.bgr, scale)
    else:
        bgr = run_on_image(runtime, picture.bgr[..., ::-1], tile, pad, on_tile)[..., ::-1]  # views, no copies
    alpha = None if picture.alpha is None else bicubic(picture.alpha, scale)
    return Picture(np.clip(bgr, 0, 1).astype(np.float32, copy=False), alpha, picture.gray, picture.max_value)


def tiles_per_image(height: int, width: int, tile: tuple[int, int] | None) -> int:
    if tile is None:
        return 1
    return -(-height // tile[0]) * -(-width // tile[1])


def compare_strip(picture: Picture, result: Picture, scale: int, gt_path: str | None = None,
                  model_label: str = 'model') -> np.ndarray:
    """bicubic | model | ground truth (cropped to the output size), side by side and labelled, as 8-bit BGR."""
    height, width = result.size
    panels = [('bicubic', Picture(np.clip(bicubic(picture.bgr, scale), 0, 1), None, False, 255)),
              (model_label, Picture(result.bgr, None, False, 255))]
    if gt_path is not None:
        panels.append(('ground truth', Picture(read_picture(gt_path).bgr[:height, :width], None, False, 255)))
    arrays = []
    for label, panel in panels:
        array = picture_to_array(panel)
        array = np.ascontiguousarray(np.pad(array, ((0, height - array.shape[0]), (0, width - array.shape[1]), (0, 0))))
        for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):  # outlined, readable on any image
            cv2.putText(array, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, thickness, cv2.LINE_AA)
        arrays.append(array)
    return np.concatenate(arrays, axis=1)
