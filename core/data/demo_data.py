"""Demo data from the images scikit-image ships inside its wheel: nothing is downloaded.

Layout (EDSR, like the benchmarks):
  datasets/demo/train/HR/{image}_s{k}.png, LR_bicubic/X{s}/{image}_s{k}x{s}.png   (240×240 HR sub-images)
  datasets/demo/val/HR/{image}.png,        LR_bicubic/X{s}/{image}x{s}.png        (held-out, not mod-cropped)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from os import path as osp

import cv2
import numpy as np
from tqdm import tqdm

from core.data.preparation import as_bgr, bicubic_downscale, extract_subimages, staged_folder, write_lossless


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        if name == 'motorcycle':
            return skimage.data.stereo_motorcycle()[0]
        return getattr(skimage.data, name)()

    return load


TRAIN_IMAGES = ('astronaut', 'coffee', 'rocket', 'motorcycle', 'hubble_deep_field', 'retina',
                'immunohistochemistry', 'brick', 'grass', 'gravel', 'moon', 'coins')
HELD_OUT_IMAGES = ('chelsea', 'camera')
SUBIMAGE_SIZE, SUBIMAGE_STEP = 240, 120  # 240 is divisible by 2, 3 and 4


def load_bgr(name: str) -> np.ndarray:
    """A scikit-image sample as a 3-channel BGR uint8 array (RGB samples are converted, gray ones tiled)."""
    img = _skimage(name)()
    if img.ndim == 3 and img.shape[2] >= 3:
        return cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2BGR)
    return as_bgr(img)


def _write_pairs(root: str, stem: str, hr: np.ndarray, scales: Sequence[int]) -> None:
    write_lossless(osp.join(root, 'HR', f'{stem}.png'), hr)
    for s in scales:
        write_lossless(osp.join(root, 'LR_bicubic', f'X{s}', f'{stem}x{s}.png'), bicubic_downscale(hr, s))


def build_demo_data(root: str = 'datasets/demo', scales: Sequence[int] = (2, 3, 4), overwrite: bool = False) -> str:
    """Write the demo train/val sets under `root` (atomically); returns `root`."""
    with staged_folder(root, overwrite=overwrite) as staging:
        for split in ('train', 'val'):
            os.makedirs(osp.join(staging, split, 'HR'))
            for s in scales:
                os.makedirs(osp.join(staging, split, 'LR_bicubic', f'X{s}'))
        for name in tqdm(TRAIN_IMAGES, desc='demo train images', unit='image'):
            tiles = extract_subimages(load_bgr(name), SUBIMAGE_SIZE, SUBIMAGE_STEP)
            for k, tile in enumerate(tiles, start=1):
                _write_pairs(osp.join(staging, 'train'), f'{name}_s{k:03d}', tile, scales)
        for name in HELD_OUT_IMAGES:
            _write_pairs(osp.join(staging, 'val'), name, load_bgr(name), scales)
    return root


def demo_data_ready(root: str = 'datasets/demo', scale: int = 4) -> bool:
    return all(osp.isdir(osp.join(root, split, 'LR_bicubic', f'X{scale}')) for split in ('train', 'val'))
