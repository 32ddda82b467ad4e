"""How upscaling one image will use memory, decided before any inference runs.

Peak memory is the input and the output in their own dtypes, plus one tile's working set. When that does not
fit in the memory available now, whole-image inference falls back to tiles (the same output), then the output
is assembled in a memory-mapped file beside it (pages the kernel can write out), and only when even that cannot
fit is the image refused, in one line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from os import path as osp

import numpy as np
import psutil

from core.errors import UserError
from core.io.paths import nearest_existing

# Working set per LR pixel of a tile's crop, inside the runtime. Measured on ETDS-M4C32 x4 (32 channels) at
# 256–1024 px crops: torch 530–780 B, onnxruntime 310–480 B; taken as 1 KiB so wider models stay covered.
RUNTIME_BYTES_PER_LR_PIXEL = 1024
# float32 copies of a tile's output alive at once: the network's, clipped, Y+CbCr or alpha, and the quantizing
FLOAT_OUTPUT_COPIES = 6
AUTO_TILE = 512  # LR pixels, when whole-image inference does not fit: 2–5% more work than one piece at pad 6
USABLE_SHARE = 0.9  # of the memory available now: leave some to everything else


@dataclass(frozen=True)
class MemoryPlan:
    tile: tuple[int, int] | None  # what to run: as asked, or AUTO_TILE when the whole image did not fit
    on_disk: bool  # assemble the output in a memory-mapped file beside it
    peak: int  # estimated bytes at the peak, beyond what the process holds already
    output_bytes: int  # the output (and comparison strip) in their final dtypes
    note: str | None  # one line for the user when the plan differs from what they asked


def gigabytes(count: int) -> str:
    """Bytes for a reader: 1.2 GB, 340 MB, 2.5 MB."""
    if count >= 2 ** 30 / 10:
        return f'{count / 2 ** 30:.1f} GB'
    return f'{count / 2 ** 20:.0f} MB' if count >= 10 * 2 ** 20 else f'{count / 2 ** 20:.1f} MB'


def working_set(crop: tuple[int, int], tile: tuple[int, int], scale: int, channels: int = 3) -> int:
    """Bytes one tile needs: the runtime on its crop, and float copies of its output."""
    crop_pixels = crop[0] * crop[1]
    return crop_pixels * (RUNTIME_BYTES_PER_LR_PIXEL + 4 * channels) \
        + tile[0] * tile[1] * scale * scale * channels * 4 * FLOAT_OUTPUT_COPIES


def available_memory() -> int:
    """Bytes the process can still take without swapping (psutil: Linux's MemAvailable, macOS's and Windows')."""
    return psutil.virtual_memory().available


def free_disk(output: str) -> int:
    """Free bytes on the disk an output (whose folder may not exist yet) will be written to."""
    return shutil.disk_usage(nearest_existing(output)).free


def plan_upscale(name: str, size: tuple[int, int], scale: int, input_bytes: int, output_bytes: int,
                 tile: tuple[int, int] | None, pad: int, fixed: tuple[int, int] | None, available: int,
                 disk_free: int) -> MemoryPlan:
    """In memory as asked; else in AUTO_TILE tiles; else with the output on disk; else a one-line refusal."""
    usable = int(available * USABLE_SHARE)

    def work(run_tile: tuple[int, int] | None) -> int:
        piece = run_tile or fixed or size
        piece = (min(piece[0], size[0]), min(piece[1], size[1]))
        crop = fixed or (min(piece[0] + 2 * pad, size[0]), min(piece[1] + 2 * pad, size[1]))
        return working_set(crop, piece, scale)

    in_memory = input_bytes + work(tile) + output_bytes
    if in_memory <= usable:
        return MemoryPlan(tile, False, in_memory, output_bytes, None)
    auto = tile if tile is not None or fixed is not None else (AUTO_TILE, AUTO_TILE)
    note = None
    if auto != tile:
        note = (f'{name}: whole-image inference needs about {gigabytes(in_memory)} and {gigabytes(available)} is '
                f'available; running in {AUTO_TILE}-pixel tiles (the same output)')
        tiled = input_bytes + work(auto) + output_bytes
        if tiled <= usable:
            return MemoryPlan(auto, False, tiled, output_bytes, note)
    on_disk = input_bytes + work(auto)
    if on_disk <= usable and output_bytes * 2 <= disk_free:  # the raw output, and the encoded file at most as big
        disk_note = (f'{name}: the {gigabytes(output_bytes)} output does not fit in the {gigabytes(available)} '
                     'available; assembling it in a memory-mapped file beside the output')
        return MemoryPlan(auto, True, on_disk, output_bytes, disk_note if note is None else f'{note}; {disk_note}')
    where = (f'{gigabytes(on_disk)} of memory with the output on disk, where {gigabytes(available)} is available'
             if on_disk > usable else f'{gigabytes(2 * output_bytes)} of disk beside the output, where '
             f'{gigabytes(disk_free)} is free')
    raise UserError(f'{name}: upscaling it x{scale} needs about {gigabytes(in_memory)} of memory '
                    f'({gigabytes(output_bytes)} for the output), or {where}; free some, use a smaller --tile, '
                    'or pass --no-memory-check to try anyway')


@contextlib.contextmanager
def output_buffer(shape: tuple[int, ...], dtype: np.dtype, beside: str | None) -> Iterator[np.ndarray]:
    """An array for the output: in memory, or (with `beside`, the output's path) memory-mapped in a hidden
    temporary file next to it, removed afterwards (and by remove_orphaned_temporaries if the process dies)."""
    if beside is None:
        yield np.empty(shape, dtype)
        return
    stem = osp.splitext(osp.basename(beside))[0]
    folder = osp.dirname(osp.abspath(beside))
    os.makedirs(folder, exist_ok=True)
    fd, raw = tempfile.mkstemp(prefix=f'.{stem}.', suffix='.tmp.raw', dir=folder)
    os.close(fd)
    try:
        array = np.memmap(raw, dtype=dtype, mode='w+', shape=shape)
        yield array
        del array
    finally:
        os.remove(raw)
