"""Upscale a user's picture with any runtime: colour models on RGB, 1-channel models on Y with bicubic CbCr
(as test.py saves them), alpha upscaled bicubically on its own, bit depth and grayness kept.

Everything runs tile by tile, the bicubic parts included, and each tile is turned into the file's integers as
soon as it is done: the only image-sized arrays are the input and the output in their own dtypes. The tiles
equal whole-image inference (the network's context is its receptive-field radius, bicubic's is
BICUBIC_CONTEXT), so tiling changes memory, not the picture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import cv2
import numpy as np
from basicsr.utils import bgr2ycbcr

from core.data.colour import bicubic, join_y_cbcr
from core.deploy.images import Picture, SourcePixels, quantize, read_source
from core.deploy.runtimes import Runtime
from core.deploy.tiling import Tile, fixed_size_tile, iter_tiled

BICUBIC_CONTEXT = 3  # LR pixels MATLAB bicubic reads on each side of an upscaled pixel (its kernel is 4 wide)
_COMPARE_PANELS = ('bicubic', 'model', 'ground truth')
_LABEL_ROWS = 32  # the labels' text, outline included, lies above this row


class CropReader(Protocol):
    """What the tiles read: float32 BGR (and alpha) crops of an image, by LR rows and columns."""

    size: tuple[int, int]
    has_alpha: bool

    def bgr(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray: ...

    def alpha(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray | None: ...


class _WholePicture:
    """A float Picture read as crops."""

    def __init__(self, picture: Picture) -> None:
        self.picture, self.size, self.has_alpha = picture, picture.size, picture.alpha is not None

    def bgr(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return self.picture.bgr[y0:y1, x0:x1]

    def alpha(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray | None:
        return None if self.picture.alpha is None else self.picture.alpha[y0:y1, x0:x1]


def bicubic_region(read: Callable[[int, int, int, int], np.ndarray], t: Tile, size: tuple[int, int],
                   scale: int) -> np.ndarray:
    """MATLAB bicubic of a tile's region, from a crop with BICUBIC_CONTEXT real pixels around it where the image
    has them: equal to the whole image's bicubic there."""
    wy0, wy1 = max(0, t.y0 - BICUBIC_CONTEXT), min(size[0], t.y1 + BICUBIC_CONTEXT)
    wx0, wx1 = max(0, t.x0 - BICUBIC_CONTEXT), min(size[1], t.x1 + BICUBIC_CONTEXT)
    up = bicubic(read(wy0, wy1, wx0, wx1), scale)
    top, left = (t.y0 - wy0) * scale, (t.x0 - wx0) * scale
    return up[top:top + (t.y1 - t.y0) * scale, left:left + (t.x1 - t.x0) * scale]


def effective_tile(size: tuple[int, int], runtime: Runtime, tile: tuple[int, int] | None,
                   pad: int) -> tuple[int, int]:
    """The tile actually run: as asked, else what a fixed-size model takes, else the whole image."""
    if tile is not None:
        return tile
    return fixed_size_tile(runtime.fixed_size, pad) if runtime.fixed_size is not None else size


def upscaled_tiles(source: CropReader, runtime: Runtime, tile: tuple[int, int] | None, pad: int,
                   on_tile: Callable[[], None] | None = None,
                   ) -> Iterator[tuple[Tile, np.ndarray, np.ndarray | None]]:
    """Each tile, its upscaled BGR (float, clipped to [0, 1]) and its upscaled alpha (or None), row by row."""
    scale, size = runtime.scale, source.size
    y_model = runtime.num_in_ch == 1

    def network_input(t: Tile) -> np.ndarray:
        crop = source.bgr(t.cy0, t.cy1, t.cx0, t.cx1)
        planes = bgr2ycbcr(crop)[..., :1] if y_model else crop[..., ::-1]
        return planes.transpose(2, 0, 1)[None]

    tiles = iter_tiled(runtime, network_input, size, scale, effective_tile(size, runtime, tile, pad), pad,
                       runtime.fixed_size)
    for t, out in tiles:
        out = out[0].transpose(1, 2, 0)
        if y_model:
            cbcr = bicubic_region(lambda *box: bgr2ycbcr(source.bgr(*box))[..., 1:], t, size, scale)
            bgr = join_y_cbcr(out, cbcr)
        else:
            bgr = out[..., ::-1]
        alpha = bicubic_region(source.alpha, t, size, scale) if source.has_alpha else None
        if on_tile is not None:
            on_tile()
        yield t, np.clip(bgr, 0, 1).astype(np.float32, copy=False), alpha


def upscale_picture(picture: Picture, runtime: Runtime, tile: tuple[int, int] | None, pad: int,
                    on_tile: Callable[[], None] | None = None) -> Picture:
    """The whole result as float (small images, and tests); upscale_into keeps large ones in their integers."""
    scale = runtime.scale
    height, width = picture.size[0] * scale, picture.size[1] * scale
    bgr = np.empty((height, width, 3), np.float32)
    alpha = None if picture.alpha is None else np.empty((height, width), np.float32)
    for t, tile_bgr, tile_alpha in upscaled_tiles(_WholePicture(picture), runtime, tile, pad, on_tile):
        box = np.s_[t.y0 * scale:t.y1 * scale, t.x0 * scale:t.x1 * scale]
        bgr[box] = tile_bgr
        if alpha is not None:
            alpha[box] = tile_alpha
    return Picture(bgr, alpha, picture.gray, picture.max_value, picture.metadata)


def output_shape(source: SourcePixels, scale: int) -> tuple[int, ...]:
    """The shape of the upscaled file's array: the source's channels at scale× its size."""
    return (source.size[0] * scale, source.size[1] * scale, *source.pixels.shape[2:])


def compare_shape(source_size: tuple[int, int], scale: int, with_gt: bool) -> tuple[int, int, int]:
    panels = 3 if with_gt else 2
    return source_size[0] * scale, source_size[1] * scale * panels, 3


def upscale_into(source: SourcePixels, runtime: Runtime, tile: tuple[int, int] | None, pad: int, out: np.ndarray,
                 compare: np.ndarray | None = None, gt: SourcePixels | None = None, model_label: str = 'model',
                 on_tile: Callable[[], None] | None = None) -> None:
    """Upscale into `out` (output_shape, the source's dtype; in memory or memory-mapped), tile by tile.

    With `compare` (compare_shape, uint8), also fill bicubic | model | ground truth (cropped to the output) and
    label the panels. Equal to quantizing upscale_picture's result, bit for bit (tested).
    """
    scale, size = runtime.scale, source.size
    width = size[1] * scale
    for t, bgr, alpha in upscaled_tiles(source, runtime, tile, pad, on_tile):
        rows, cols = slice(t.y0 * scale, t.y1 * scale), slice(t.x0 * scale, t.x1 * scale)
        out[rows, cols] = quantize(bgr, alpha, source.gray, source.max_value)
        if compare is not None:
            _fill_panels(compare, width, rows, cols, bicubic_region(source.bgr, t, size, scale), bgr, gt)
    if compare is not None:
        label_panels(compare, width, _compare_labels(model_label))


def _fill_panels(strip: np.ndarray, width: int, rows: slice, cols: slice, bicubic_bgr: np.ndarray,
                 model_bgr: np.ndarray, gt: CropReader | None) -> None:
    """One region of bicubic | model | ground truth in an 8-bit strip (black beyond a smaller ground truth)."""
    strip[rows, cols] = quantize(np.clip(bicubic_bgr, 0, 1), None, False, 255)
    strip[rows, width + cols.start:width + cols.stop] = quantize(model_bgr, None, False, 255)
    if gt is None:
        return
    panel = strip[rows, 2 * width + cols.start:2 * width + cols.stop]
    panel[...] = 0
    y1, x1 = min(rows.stop, gt.size[0]), min(cols.stop, gt.size[1])
    if rows.start < y1 and cols.start < x1:
        gt_bgr = gt.bgr(rows.start, y1, cols.start, x1)
        panel[:gt_bgr.shape[0], :gt_bgr.shape[1]] = quantize(gt_bgr, None, False, 255)


def _compare_labels(model_label: str) -> tuple[str, ...]:
    return _COMPARE_PANELS[0], model_label, *_COMPARE_PANELS[2:]


def label_panels(strip: np.ndarray, width: int, labels: tuple[str, ...]) -> None:
    """Write each panel's label in its top-left corner, outlined so it reads on any image and clipped to its
    panel. Only the label's rows are copied (OpenCV draws on contiguous arrays), not a panel of a large strip."""
    for i, label in enumerate(labels[:strip.shape[1] // width]):
        corner = np.ascontiguousarray(strip[:_LABEL_ROWS, i * width:(i + 1) * width])
        for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            cv2.putText(corner, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, thickness, cv2.LINE_AA)
        strip[:_LABEL_ROWS, i * width:(i + 1) * width] = corner


def tiles_per_image(height: int, width: int, tile: tuple[int, int] | None) -> int:
    if tile is None:
        return 1
    return -(-height // tile[0]) * -(-width // tile[1])


def compare_strip(picture: Picture, result: Picture, scale: int, gt_path: str | None = None,
                  model_label: str = 'model') -> np.ndarray:
    """bicubic | model | ground truth (cropped to the output size), side by side and labelled, as 8-bit BGR."""
    height, width = result.size
    gt = None if gt_path is None else read_source(gt_path)
    strip = np.zeros(compare_shape(picture.size, scale, gt is not None), np.uint8)
    _fill_panels(strip, width, slice(0, height), slice(0, width), bicubic(picture.bgr, scale), result.bgr, gt)
    label_panels(strip, width, _compare_labels(model_label))
    return strip
