"""Building training data: sub-image extraction, MATLAB-bicubic LR images, meta-info and lmdb.

The scripts in scripts/ are thin CLIs over these functions; the math is basicsr's (`imresize`, `LmdbMaker`).
Outputs are written into a staging folder and renamed when complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from os import path as osp

import cv2
import numpy as np
from basicsr.data.transforms import mod_crop
from basicsr.utils.lmdb_util import LmdbMaker
from basicsr.utils.matlab_functions import imresize
from PIL import Image

from core.errors import UserError

# How sub-images are stored. PNG is compact; BMP is uncompressed, so the training loader skips decoding (a 480²
# sub-image: 5.5 ms as PNG, 0.03 ms as BMP, measured by scripts/benchmark_loader.py) at 1.8× the disk space.
SUBIMAGE_FORMATS = ('png', 'bmp')


def bicubic_downscale(img: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB `imresize(img, 1/scale, 'bicubic')` of a uint8 image (mod-cropped first), rounded to uint8."""
    hr = mod_crop(img, scale).astype(np.float64) / 255.0
    lr = imresize(hr, 1 / scale)
    return np.clip(np.round(lr * 255.0), 0, 255).astype(np.uint8)


def subimage_origins(length: int, crop: int, step: int, thresh: int = 0) -> list[int]:
    """Top-left offsets along one side, BasicSR-style: a regular grid plus a last crop flush with the border."""
    if length < crop:
        return []
    origins = list(range(0, length - crop + 1, step))
    if length - (origins[-1] + crop) > thresh:
        origins.append(length - crop)
    return origins


def extract_subimages(img: np.ndarray, crop: int, step: int, thresh: int = 0) -> list[np.ndarray]:
    """Overlapping crop×crop tiles covering the image, in row-major order."""
    h, w = img.shape[:2]
    return [np.ascontiguousarray(img[y:y + crop, x:x + crop])
            for y in subimage_origins(h, crop, step, thresh) for x in subimage_origins(w, crop, step, thresh)]


def as_bgr(img: np.ndarray) -> np.ndarray:
    """3-channel BGR uint8 from grayscale, BGR or BGRA input (all our outputs are 3-channel)."""
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def write_image(path: str, img: np.ndarray) -> None:
    """Write losslessly in the format the extension names (.png or .bmp)."""
    if not cv2.imwrite(path, img):
        raise UserError(f'could not write {path}; check the output folder is writable')


def write_meta_info(meta_file: str, entries: list[tuple[str, tuple[int, ...]]]) -> None:
    """Write basicsr's meta-info format, one `name.png (h,w,c)` line per image, sorted by name."""
    with open(meta_file, 'w') as handle:
        for name, shape in sorted(entries):
            handle.write(f"{name} ({','.join(str(v) for v in shape)})\n")


def build_lmdb(folder: str, lmdb_path: str) -> None:
    """Pack every image of `folder` (PNG or BMP) into `lmdb_path` with basicsr's LmdbMaker, keyed by file stem.

    The files' bytes go in as stored: basicsr's make_lmdb_from_imgs would decode and re-encode each as PNG, which
    costs time here and would turn uncompressed BMP back into PNG that the loader then has to decode.
    """
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(tuple(f'.{f}' for f in SUBIMAGE_FORMATS)))
    # basicsr sizes the map from the first image alone, too small for mixed or tiny images: size it from all.
    total = sum(osp.getsize(osp.join(folder, n)) for n in names)
    maker = LmdbMaker(lmdb_path, map_size=2 * total + (64 << 20))
    for name in names:
        path = osp.join(folder, name)
        with Image.open(path) as image:
            shape = (image.height, image.width, len(image.getbands()))
        with open(path, 'rb') as handle:
            maker.put(handle.read(), osp.splitext(name)[0], shape)
    maker.close()


@contextlib.contextmanager
def staged_folder(final: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a staging folder that becomes `final` only if the block completes."""
    if osp.exists(final) and not overwrite:
        raise UserError(f'{final} already exists; remove it or pass --overwrite')
    final = final.rstrip('/')
    staging = osp.join(osp.dirname(final), '.partial.' + osp.basename(final))  # keeps the suffix (.lmdb)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if osp.exists(final):
        shutil.rmtree(final)
    os.replace(staging, final)
