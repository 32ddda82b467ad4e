"""VDSR's training data: Y patches of HR images and their bicubic-degraded versions at a random scale.

Each training sample picks a scale from `scales`, cuts an HR patch (`patch_size`, 41 in the paper, enlarged
to a multiple of the scale), downscales it and upscales it back with MATLAB bicubic (basicsr's imresize),
and returns both as 1-channel Y crops of `patch_size`. In val/test phase it returns whole mod-cropped
images at `scale`. One model thus learns x2, x3 and x4 at once.
"""

from __future__ import annotations

import random
from os import path as osp

import numpy as np
import torch
from basicsr.data.transforms import mod_crop
from basicsr.utils import bgr2ycbcr
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from core.data.layouts import LARGE_IMAGE_HINT, PREPARE_HINT, checked_image_size, image_files
from core.data.paired_sr_dataset import random_augment
from core.errors import UserError
from core.io.image_file import decode_bgr8


def degrade(y: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic down then up by `scale`: the interpolated LR image VDSR takes as input (same size as `y`)."""
    return imresize(imresize(y, 1 / scale), scale)


@DATASET_REGISTRY.register()
class MultiScaleYDataset(data.Dataset):
    """Options: `dataroot_gt` (HR images), `scales` ([2, 3, 4]), `patch_size` (41), `use_hflip`, `use_vflip`,
    `use_rot`; `scale` (from the YAML's top level) is the one used outside training."""

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        folder = opt.get('dataroot_gt')
        if not folder or not osp.isdir(folder):
            raise UserError(f"dataset '{opt.get('name')}': dataroot_gt {folder} is not a folder of HR images; "
                            + PREPARE_HINT)
        self.paths = image_files(folder)
        if not self.paths:
            raise UserError(f"dataset '{opt.get('name')}' has no images in {folder}; " + PREPARE_HINT)
        for path in self.paths:
            checked_image_size(path)
        self.scales = [int(s) for s in opt.get('scales', [opt['scale']])]
        self.patch_size = int(opt.get('patch_size', 41))

    @staticmethod
    def _y(bgr: np.ndarray) -> np.ndarray:
        """MATLAB BT.601 Y of uint8 BGR pixels, as float32 in [16, 235]/255."""
        return bgr2ycbcr(bgr.astype(np.float32) / 255.0, y_only=True)[..., None].astype(np.float32)

    def __getitem__(self, index: int) -> dict:
        with open(self.paths[index], 'rb') as handle:
            bgr = decode_bgr8(self.paths[index], handle.read(), hint=LARGE_IMAGE_HINT)
        if self.opt['phase'] == 'train':
            scale = random.choice(self.scales)
            size = -(-self.patch_size // scale) * scale
            if min(bgr.shape[:2]) < size:
                raise UserError(f'{self.paths[index]} is smaller than a {size}x{size} patch; lower patch_size')
            top, left = random.randint(0, bgr.shape[0] - size), random.randint(0, bgr.shape[1] - size)
            gt = self._y(bgr[top:top + size, left:left + size])  # Y is per pixel: crop first, convert less
            lq = degrade(gt, scale)
            gt, lq = gt[:self.patch_size, :self.patch_size], lq[:self.patch_size, :self.patch_size]
            gt, lq = random_augment([gt, lq], self.opt.get('use_hflip', False), self.opt.get('use_vflip', False),
                                    self.opt.get('use_rot', False))
        else:
            scale = int(self.opt['scale'])
            gt = mod_crop(self._y(bgr), scale)
            lq = degrade(gt, scale)
        to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float()  # noqa: E731
        return {'lq': to_tensor(lq), 'gt': to_tensor(gt), 'lq_path': self.paths[index], 'gt_path': self.paths[index],
                'scale': scale}

    def __len__(self) -> int:
        return len(self.paths)
