"""Tiled inference: bounded memory for any image size, and images of any size through a fixed-size model.

Each tile is run with `pad` LR pixels of real image context on every side that has one, and only its
centre is kept. When `pad` covers the network's receptive-field radius, every kept output pixel saw
exactly what it sees in whole-image inference, so the stitched result equals it (to float rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from core.errors import UserError

Forward = Callable[[np.ndarray], np.ndarray]  # NCHW float32 in [0, 1] → N C H·s W·s


@dataclass(frozen=True)
class Tile:
    """Output rows/cols [y0, y1) × [x0, x1) in LR pixels, computed from the input crop [cy0, cy1) × [cx0, cx1)."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int


def _spans(length: int, tile: int, pad: int, fixed: int | None) -> list[tuple[int, int, int, int]]:
    """(start, end, crop_start, crop_end) along one axis; with `fixed`, every crop is exactly `fixed` long
    (shifted back inside the image at its end) unless the image itself is shorter."""
    spans = []
    for start in range(0, length, tile):
        end = min(start + tile, length)
        if fixed is None:
            crop_start, crop_end = max(0, start - pad), min(length, end + pad)
        elif length <= fixed:
            crop_start, crop_end = 0, length
        else:
            crop_start = min(max(0, start - pad), length - fixed)
            crop_end = crop_start + fixed
        spans.append((start, end, crop_start, crop_end))
    return spans


def plan_tiles(height: int, width: int, tile: tuple[int, int], pad: int,
               fixed: tuple[int, int] | None = None) -> list[Tile]:
    """The tiles covering an image, row by row."""
    rows = _spans(height, tile[0], pad, fixed[0] if fixed else None)
    cols = _spans(width, tile[1], pad, fixed[1] if fixed else None)
    return [Tile(y0, y1, x0, x1, cy0, cy1, cx0, cx1) for y0, y1, cy0, cy1 in rows for x0, x1, cx0, cx1 in cols]


def check_tile(tile: int, pad: int) -> None:
    if tile < 2 * pad:
        raise UserError(f'--tile {tile} is smaller than twice --tile-pad {pad}; use --tile {2 * pad} or more, '
                        'or a smaller --tile-pad')


def fixed_size_tile(fixed: tuple[int, int], pad: int) -> tuple[int, int]:
    """The kept part of a fixed-size model's input: its size less the context on both sides."""
    tile = (fixed[0] - 2 * pad, fixed[1] - 2 * pad)
    if min(tile) < 1:
        raise UserError(f'a model with a fixed {fixed[0]}x{fixed[1]} input has no room for --tile-pad {pad} on '
                        f'both sides; use --tile-pad {(min(fixed) - 1) // 2} or less')
    return tile


def bounded_tile(tile: tuple[int, int] | None, pad: int,
                 largest: tuple[int, int] | None) -> tuple[int, int] | None:
    """The tile that keeps every crop (tile plus its context) within a file's largest input; None: no bound."""
    if largest is None:
        return tile
    limit = fixed_size_tile(largest, pad)
    return limit if tile is None else (min(tile[0], limit[0]), min(tile[1], limit[1]))


def _pad_to(crop: np.ndarray, fixed: tuple[int, int] | None) -> np.ndarray:
    """Edge-replicate a crop up to a fixed model input (only when the image is smaller than it)."""
    if fixed is None or crop.shape[-2:] == fixed:
        return crop
    pad_h, pad_w = fixed[0] - crop.shape[-2], fixed[1] - crop.shape[-1]
    return np.pad(crop, ((0, 0), (0, 0), (0, max(pad_h, 0)), (0, max(pad_w, 0))), mode='edge')


def iter_tiled(forward: Forward, read: Callable[[Tile], np.ndarray], size: tuple[int, int], scale: int,
               tile: tuple[int, int], pad: int,
               fixed: tuple[int, int] | None = None) -> Iterator[tuple[Tile, np.ndarray]]:
    """Run `forward` tile by tile on an image of `size` whose 1×C×h×w crops `read` gives (so the whole image
    need never exist as float), yielding each tile and its kept output."""
    for t in plan_tiles(*size, tile, pad, fixed):
        out = forward(_pad_to(np.ascontiguousarray(read(t), dtype=np.float32), fixed))
        top, left = (t.y0 - t.cy0) * scale, (t.x0 - t.cx0) * scale
        yield t, out[:, :, top:top + (t.y1 - t.y0) * scale, left:left + (t.x1 - t.x0) * scale]


def crop_of(lq: np.ndarray) -> Callable[[Tile], np.ndarray]:
    """The reader of a whole 1×C×H×W array."""
    return lambda t: lq[:, :, t.cy0:t.cy1, t.cx0:t.cx1]


def tiled_forward(forward: Forward, lq: np.ndarray, scale: int, tile: tuple[int, int] | None, pad: int,
                  fixed: tuple[int, int] | None = None, on_tile: Callable[[], None] | None = None) -> np.ndarray:
    """Whole-image output assembled from tiles (or one call when neither a tile nor a fixed size is set)."""
    if tile is None and fixed is None:
        return forward(lq)
    if tile is None:
        tile = fixed_size_tile(fixed, pad)
    height, width = lq.shape[-2:]
    out = None
    for t, part in iter_tiled(forward, crop_of(lq), (height, width), scale, tile, pad, fixed):
        if out is None:
            out = np.empty((lq.shape[0], part.shape[1], height * scale, width * scale), dtype=np.float32)
        out[:, :, t.y0 * scale:t.y1 * scale, t.x0 * scale:t.x1 * scale] = part
        if on_tile is not None:
            on_tile()
    return out
