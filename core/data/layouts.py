"""Where paired LR/HR images live on disk: the EDSR and BasicSR benchmark layouts, or explicit folders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from os import path as osp

from PIL import Image

from core.errors import UserError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def image_files(folder: str) -> list[str]:
    """The image files directly in `folder`, sorted (by extension, case-insensitive)."""
    return sorted(osp.join(folder, n) for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))


# what the last bytes of a complete file contain; a copy or download cut short lacks it
_END_MARKERS = {'PNG': b'IEND', 'JPEG': b'\xff\xd9'}
_TAIL_BYTES = 4096  # lenient: some writers pad after the end marker


def checked_image_size(path: str) -> tuple[int, int]:
    """(height, width) from the header, after checking the file is whole: O(1) reads, no decoding.

    A bad file found here fails before training starts, instead of at iteration 5,000 in a data worker.
    """
    if not osp.isfile(path):
        raise UserError(f'{path} does not exist; ' + PREPARE_HINT)
    size = osp.getsize(path)
    if size == 0:
        raise UserError(f'{path} is empty (0 bytes); replace it or remove it from the data set')
    try:
        with Image.open(path) as image:
            width, height = image.size
            fmt = image.format
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f'{path} is not a readable image ({err}); replace it or remove it from the data set') from None
    marker = _END_MARKERS.get(fmt)
    if marker is not None:
        with open(path, 'rb') as handle:
            handle.seek(max(0, size - _TAIL_BYTES))
            if marker not in handle.read():
                raise UserError(f'{path} is truncated (its {fmt} end marker is missing); replace it or remove it '
                                'from the data set')
    return height, width


PREPARE_HINT = ('build training data with scripts/prepare_div2k.py, or the demo data with '
                'scripts/make_demo_data.py; see datasets/README.md')


@dataclass(frozen=True)
class PairFolders:
    gt: str
    lq: str
    filename_tmpl: str  # maps a GT stem to its LQ stem, e.g. '{}x4'


def edsr_layout(root: str, scale: int) -> PairFolders:
    """`HR/name.png` with `LR_bicubic/X{s}/name x{s}.png` (Set5/Set14 as EDSR distributes them)."""
    return PairFolders(osp.join(root, 'HR'), osp.join(root, 'LR_bicubic', f'X{scale}'), f'{{}}x{scale}')


def basicsr_layout(root: str, scale: int) -> PairFolders:
    """`GTmod12/name.png` with `LRbicx{s}/name.png` (BasicSR's benchmark release)."""
    return PairFolders(osp.join(root, 'GTmod12'), osp.join(root, f'LRbicx{scale}'), '{}')


def resolve_pair_folders(opt: dict) -> PairFolders:
    """Folders from `dataroot` (layout detected) or from explicit `dataroot_gt` / `dataroot_lq`."""
    scale = opt['scale']
    if opt.get('dataroot'):
        root = opt['dataroot']
        for layout in (edsr_layout, basicsr_layout):
            folders = layout(root, scale)
            if osp.isdir(folders.gt) and osp.isdir(folders.lq):
                return folders
        raise UserError(f"no paired data for x{scale} under '{root}': expected HR/ and LR_bicubic/X{scale}/"
                        f'{{name}}x{scale}.png (EDSR layout) or GTmod12/ and LRbicx{scale}/ (BasicSR layout); '
                        + PREPARE_HINT)
    if not opt.get('dataroot_gt') or not opt.get('dataroot_lq'):
        raise UserError(f"dataset '{opt.get('name')}' needs dataroot (a benchmark folder) or both "
                        'dataroot_gt and dataroot_lq')
    folders = PairFolders(opt['dataroot_gt'], opt['dataroot_lq'], opt.get('filename_tmpl', '{}'))
    for folder in (folders.gt, folders.lq):
        if not osp.exists(folder):
            raise UserError(f"dataset folder '{folder}' does not exist; " + PREPARE_HINT)
    return folders
