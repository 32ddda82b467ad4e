"""Calibration inputs for int8: LR patches from a folder of images or from a training YAML's dataset."""

from __future__ import annotations

from collections.abc import Callable
from os import path as osp

import numpy as np
import yaml

from core.data.colour import network_input
from core.data.layouts import resolve_pair_folders
from core.deploy.images import list_images, read_picture
from core.errors import UserError


def calibration_folder_from_yaml(opt_path: str) -> str:
    """The LR folder of a training YAML's `datasets:train` (dataroot layouts or dataroot_lq)."""
    with open(opt_path) as handle:
        opt = yaml.safe_load(handle) or {}
    train = (opt.get('datasets') or {}).get('train')
    if not isinstance(train, dict):
        raise UserError(f'{opt_path} has no datasets:train to calibrate on; pass --calib FOLDER of LR images')
    if train.get('type') != 'PairedSRDataset' and not train.get('dataroot_lq'):
        raise UserError(f"{opt_path}'s training set ({train.get('type')}) has no LR folder; pass --calib FOLDER")
    return resolve_pair_folders({**train, 'scale': opt.get('scale', train.get('scale'))}).lq


def fit_to_size(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random size[0]×size[1] crop; an image smaller than that is reflected up to it."""
    height, width = image.shape[:2]
    pad_h, pad_w = max(0, size[0] - height), max(0, size[1] - width)
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode='symmetric')
        height, width = image.shape[:2]
    top, left = rng.integers(0, height - size[0] + 1), rng.integers(0, width - size[1] + 1)
    return image[top:top + size[0], left:left + size[1]]


def calibration_patches(folder: str, size: tuple[int, int], count: int, num_in_ch: int, seed: int = 0,
                        on_note: Callable[[str], None] | None = None) -> list[np.ndarray]:
    """`count` 1×C×H×W float32 patches in [0, 1] (RGB, or Y for 1-channel models), cycling over the images.

    A colour model calibrated on gray images would learn the wrong activation ranges, so that is refused. Images
    smaller than the patch are mirrored up to it, and `on_note` is told in one line (mirrored borders are content
    the model never sees whole, so the ranges come partly from them).
    """
    if not osp.isdir(folder):
        raise UserError(f'calibration folder {folder} does not exist; pass --calib with a folder of LR images')
    paths = list_images(folder)
    rng = np.random.default_rng(seed)
    pictures = [read_picture(p) for p in paths[:count]]
    if num_in_ch == 3 and all(p.gray for p in pictures):
        raise UserError(f'{folder} holds only grayscale images but the model takes colour (3 channels); '
                        'calibrate on colour LR images')
    small = [p for p in pictures if p.bgr.shape[0] < size[0] or p.bgr.shape[1] < size[1]]
    if small and on_note is not None:
        fit = (min(p.bgr.shape[0] for p in pictures), min(p.bgr.shape[1] for p in pictures))
        on_note(f'calibration: {len(small)} of {len(pictures)} images in {folder} are smaller than the '
                f'{size[0]}x{size[1]} patch and were mirrored up to it; patches of at most {fit[0]}x{fit[1]} '
                '(TFLite: --size) would use them whole')
    patches = []
    for i in range(count):
        bgr = pictures[i % len(pictures)].bgr
        patch = fit_to_size(network_input(bgr, num_in_ch), size, rng)
        patches.append(np.ascontiguousarray(patch.transpose(2, 0, 1)[None], dtype=np.float32))
    return patches
