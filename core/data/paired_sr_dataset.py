"""Paired LR/HR dataset: basicsr's file clients and path helpers, with the options SR training needs.

Beyond basicsr's PairedImageDataset it reads the EDSR and BasicSR benchmark layouts from one
`dataroot`, mod-crops HR to LR·scale on load in every phase, checks every pair's sizes up front (a
one-line error names the bad pair), crops by `lq_size`, flips and rotates independently, and can
shuffle RGB channels.
"""

from __future__ import annotations

import random
import re
from os import path as osp

import numpy as np
from basicsr.data.data_util import paired_paths_from_folder, paired_paths_from_lmdb, paired_paths_from_meta_info_file
from basicsr.data.transforms import paired_random_crop
from basicsr.utils import FileClient, bgr2ycbcr, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from core.data.layouts import LARGE_IMAGE_HINT, PREPARE_HINT, checked_image_size, resolve_pair_folders
from core.errors import UserError
from core.io.image_file import decode_bgr8


def _pair_size_error(lq_path: str, lq_hw: tuple[int, int], gt_path: str, gt_hw: tuple[int, int], scale: int) -> str:
    return (f'{lq_path} is {lq_hw[0]}x{lq_hw[1]} but {gt_path} is {gt_hw[0]}x{gt_hw[1]}: at x{scale} the LR must be '
            f'HR // {scale} in each side; check scale, or regenerate the LR images with scripts/prepare_div2k.py')


def pair_fits(lq_hw: tuple[int, int], gt_hw: tuple[int, int], scale: int) -> bool:
    """A pair fits when the HR, mod-cropped to LR·scale, loses less than `scale` pixels per side."""
    return all(g // scale == q for q, g in zip(lq_hw, gt_hw, strict=True))


def _lmdb_shapes(lmdb_folder: str) -> dict[str, tuple[int, int]]:
    shapes = {}
    with open(osp.join(lmdb_folder, 'meta_info.txt')) as handle:
        for line in handle:
            match = re.match(r'(\S+)\s+\((\d+),\s*(\d+)', line)
            if match:
                shapes[match.group(1).split('.')[0]] = (int(match.group(2)), int(match.group(3)))
    return shapes


def random_augment(images: list[np.ndarray], hflip: bool, vflip: bool, rot90: bool) -> list[np.ndarray]:
    """Apply the same random flips / 90° rotation to every image.

    Written here because basicsr's `augment` ties the vertical flip to `use_rot`.
    """
    ops = []
    if hflip and random.random() < 0.5:
        ops.append(lambda img: img[:, ::-1])
    if vflip and random.random() < 0.5:
        ops.append(lambda img: img[::-1])
    if rot90 and random.random() < 0.5:
        ops.append(lambda img: img.transpose(1, 0, 2))
    for op in ops:
        images = [op(img) for img in images]
    return [np.ascontiguousarray(img) for img in images]


@DATASET_REGISTRY.register()
class PairedSRDataset(data.Dataset):
    """LR/HR pairs from folders (EDSR or BasicSR layout, or explicit), a meta-info file, or lmdb.

    Options: `dataroot` | `dataroot_gt` + `dataroot_lq` [+ `filename_tmpl`, `meta_info_file`],
    `io_backend: {type: disk | lmdb}`, `lq_size` (train LR patch), `use_hflip`, `use_vflip`, `use_rot`,
    `use_channels_shuffle`, `color: y` (yield the MATLAB BT.601 Y channel only, for 1-channel models);
    `scale` and `phase` come from basicsr's option parsing.
    """

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        self.scale = int(opt['scale'])
        self.io_backend_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        self.file_client = None
        folders = resolve_pair_folders(opt)
        self.gt_folder, self.lq_folder = folders.gt, folders.lq
        try:
            if self.io_backend_opt['type'] == 'lmdb':
                self.io_backend_opt['db_paths'] = [self.lq_folder, self.gt_folder]
                self.io_backend_opt['client_keys'] = ['lq', 'gt']
                self.paths = paired_paths_from_lmdb([self.lq_folder, self.gt_folder], ['lq', 'gt'])
            elif opt.get('meta_info_file'):
                self.paths = paired_paths_from_meta_info_file([self.lq_folder, self.gt_folder], ['lq', 'gt'],
                                                              opt['meta_info_file'], folders.filename_tmpl)
            else:
                self.paths = paired_paths_from_folder([self.lq_folder, self.gt_folder], ['lq', 'gt'],
                                                      folders.filename_tmpl)
        except (AssertionError, ValueError, FileNotFoundError) as err:
            raise UserError(f"dataset '{opt.get('name')}' is not a valid LR/HR pairing: {err}; "
                            + PREPARE_HINT) from None
        self.paths.sort(key=lambda p: p['gt_path'])  # basicsr lists folders in file-system order
        if not self.paths:
            raise UserError(f"dataset '{opt.get('name')}' has no images in {self.gt_folder}; " + PREPARE_HINT)
        self._check_pair_sizes()

    def _check_pair_sizes(self) -> None:
        """Fail before training starts, naming the first pair whose sizes do not match the scale, or the first
        empty or truncated file."""
        if self.io_backend_opt['type'] == 'lmdb':
            lq_shapes, gt_shapes = _lmdb_shapes(self.lq_folder), _lmdb_shapes(self.gt_folder)
            sizes = [(p, lq_shapes[p['lq_path']], gt_shapes[p['gt_path']]) for p in self.paths]
        else:
            sizes = [(paths, checked_image_size(paths['lq_path']), checked_image_size(paths['gt_path']))
                     for paths in self.paths]
        for paths, lq_hw, gt_hw in sizes:
            if not pair_fits(lq_hw, gt_hw, self.scale):
                raise UserError(_pair_size_error(paths['lq_path'], lq_hw, paths['gt_path'], gt_hw, self.scale))
        lq_size = self.opt.get('lq_size')
        if self.opt['phase'] == 'train' and lq_size:
            paths, lq_hw, _ = min(sizes, key=lambda item: min(item[1]))
            if min(lq_hw) < lq_size:
                raise UserError(f"{paths['lq_path']} is {lq_hw[0]}x{lq_hw[1]}, smaller than lq_size {lq_size}; "
                                'lower lq_size or use larger training images')

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            backend = dict(self.io_backend_opt)
            self.file_client = FileClient(backend.pop('type'), **backend)
        paths = self.paths[index]
        # decoded as uint8 and made float only after cropping: same values, a fraction of the conversion work
        # basicsr's imfrombytes decoding, after the header checks every reader makes
        img_gt = decode_bgr8(paths['gt_path'], self.file_client.get(paths['gt_path'], 'gt'), hint=LARGE_IMAGE_HINT)
        img_lq = decode_bgr8(paths['lq_path'], self.file_client.get(paths['lq_path'], 'lq'), hint=LARGE_IMAGE_HINT)
        scale = self.scale
        if not pair_fits(img_lq.shape[:2], img_gt.shape[:2], scale):
            raise UserError(_pair_size_error(paths['lq_path'], img_lq.shape[:2], paths['gt_path'],
                                             img_gt.shape[:2], scale))
        img_gt = img_gt[:img_lq.shape[0] * scale, :img_lq.shape[1] * scale]  # mod-crop HR to LR·scale
        if self.opt['phase'] == 'train':
            img_gt, img_lq = self._random_patch(img_gt, img_lq, paths['gt_path'])
            img_gt, img_lq = random_augment([img_gt, img_lq], self.opt.get('use_hflip', False),
                                            self.opt.get('use_vflip', False), self.opt.get('use_rot', False))
            if self.opt.get('use_channels_shuffle', False):
                order = np.random.permutation(img_gt.shape[2])
                img_gt, img_lq = img_gt[..., order], img_lq[..., order]
        img_gt, img_lq = (img.astype(np.float32) / 255.0 for img in (img_gt, img_lq))  # as imfrombytes(float32=True)
        if self.opt.get('color') == 'y':  # luminance models: MATLAB BT.601 Y in [16, 235]/255
            img_gt = bgr2ycbcr(np.ascontiguousarray(img_gt), y_only=True)[..., None]
            img_lq = bgr2ycbcr(np.ascontiguousarray(img_lq), y_only=True)[..., None]
        tensor_gt, tensor_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        return {'lq': tensor_lq, 'gt': tensor_gt, 'lq_path': paths['lq_path'], 'gt_path': paths['gt_path']}

    def _random_patch(self, img_gt: np.ndarray, img_lq: np.ndarray, gt_path: str) -> tuple[np.ndarray, np.ndarray]:
        lq_size = self.opt.get('lq_size')
        if not lq_size:
            return img_gt, img_lq
        return paired_random_crop(img_gt, img_lq, lq_size * self.scale, self.scale, gt_path)

    def __len__(self) -> int:
        return len(self.paths)

