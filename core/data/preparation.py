"""Building training data: sub-image extraction, MATLAB-bicubic LR images, meta-info and lmdb.

The scripts in scripts/ are thin CLIs over these functions; the math is basicsr's (`imresize`, `LmdbMaker`).
Outputs are written into a staging folder and renamed when complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from functools import partial
from multiprocessing import Pool
from os import path as osp

import cv2
import numpy as np
from basicsr.data.transforms import mod_crop
from basicsr.utils.lmdb_util import LmdbMaker
from basicsr.utils.matlab_functions import imresize
from PIL import Image
from tqdm import tqdm

from core.data.layouts import image_files
from core.errors import UserError
from core.io.image_file import decode_image

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


def write_lossless(path: str, img: np.ndarray) -> None:
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


def write_subimages(path: str, hr_dir: str, lr_dirs: dict[int, str], crop: int, step: int, thresh: int,
                  fmt: str = 'png') -> list[tuple[str, tuple[int, ...]]]:
    """Cut one HR image into sub-images and write each with its LR versions; returns meta-info entries."""
    img = decode_image(path, hint='crop it into parts first').pixels
    stem = osp.splitext(osp.basename(path))[0]
    entries = []
    for k, tile in enumerate(extract_subimages(as_bgr(img), crop, step, thresh), start=1):
        name = f'{stem}_s{k:03d}.{fmt}'
        write_lossless(osp.join(hr_dir, name), tile)
        for scale, lr_dir in lr_dirs.items():
            write_lossless(osp.join(lr_dir, name), bicubic_downscale(tile, scale))
        entries.append((name, tile.shape))
    return entries


def prepare_div2k(input_dir: str, output_dir: str, scales: list[int], crop: int, step: int, thresh: int, workers: int,
            make_lmdb: bool, overwrite: bool, fmt: str = 'png') -> list[str]:
    """HR and LR sub-images, meta-info and (optionally) lmdb of a DIV2K HR folder (scripts/prepare_div2k.py);
    returns the paths it wrote."""
    if fmt not in SUBIMAGE_FORMATS:
        raise UserError(f"--format {fmt} is not one of {', '.join(SUBIMAGE_FORMATS)}")
    if not osp.isdir(input_dir):
        raise UserError(f'--input {input_dir} is not a folder; point it at the extracted DIV2K_train_HR')
    bad = [s for s in scales if crop % s]
    if bad:
        raise UserError(f'--crop-size {crop} is not divisible by scale(s) {bad}; use a multiple of 12 such as 480')
    images = image_files(input_dir)
    if not images:
        raise UserError(f'no images in {input_dir}')
    hr_final = osp.join(output_dir, 'DIV2K_train_HR_sub')
    lr_root_final = osp.join(output_dir, 'DIV2K_train_LR_bicubic_sub')
    meta_file = osp.join(output_dir, 'meta_info_DIV2K_sub.txt')
    written = [hr_final, lr_root_final, meta_file]
    with contextlib.ExitStack() as stack:
        hr_dir = stack.enter_context(staged_folder(hr_final, overwrite))
        lr_root = stack.enter_context(staged_folder(lr_root_final, overwrite))
        lr_dirs = {s: osp.join(lr_root, f'X{s}') for s in scales}
        for folder in lr_dirs.values():
            os.makedirs(folder)
        work = partial(write_subimages, hr_dir=hr_dir, lr_dirs=lr_dirs, crop=crop, step=step, thresh=thresh, fmt=fmt)
        entries = []
        with Pool(workers) as pool:
            for result in tqdm(pool.imap_unordered(work, images), total=len(images), desc='DIV2K', unit='image'):
                entries += result
        if not entries:
            raise UserError(f'every image in {input_dir} is smaller than --crop-size {crop}')
        if make_lmdb:
            for folder, name in [(hr_dir, 'DIV2K_train_HR_sub.lmdb')] + [
                    (lr_dirs[s], f'DIV2K_train_LR_bicubic_X{s}_sub.lmdb') for s in scales]:
                lmdb_dir = stack.enter_context(staged_folder(osp.join(output_dir, name), overwrite))
                os.rmdir(lmdb_dir)  # basicsr's writer creates the folder itself
                build_lmdb(folder, lmdb_dir)
                written.append(osp.join(output_dir, name))
    write_meta_info(meta_file + '.partial', entries)
    os.replace(meta_file + '.partial', meta_file)
    return written
