"""Where paired LR/HR images live on disk: the EDSR and BasicSR benchmark layouts, or explicit folders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from os import path as osp

from core.errors import UserError
from core.io.image_file import image_header

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def image_files(folder: str) -> list[str]:
    """The image files directly in `folder`, sorted (by extension, case-insensitive)."""
    return sorted(osp.join(folder, n) for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))


def checked_image_size(path: str) -> tuple[int, int]:
    """(height, width) as stored, from the checked header (whole, known format, within the pixel limit): a few
    kilobytes read, no decoding. A bad file found here fails before training starts, not at iteration 5,000."""
    if not osp.isfile(path):
        raise UserError(f'{path} does not exist; ' + PREPARE_HINT)
    header = image_header(path, hint=LARGE_IMAGE_HINT)
    return header.height, header.width


LARGE_IMAGE_HINT = 'cut it into sub-images with scripts/prepare_div2k.py'  # over the pixel limit
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


def ground_truth_for(lr_path: str, gt: str, scale: int) -> str:
    """The ground truth of an LR image: the same name in `gt`, its HR name there (`zebrax4.png` → `zebra.png`, as
    the EDSR layout pairs them), or either under a benchmark folder's `HR/` or `GTmod12/`."""
    name = osp.basename(lr_path)
    stem, _ = osp.splitext(name)
    hr_stem = stem[:-len(f'x{scale}')] if stem.endswith(f'x{scale}') else stem
    folders = [gt] + [osp.join(gt, sub) for sub in ('HR', 'GTmod12') if osp.isdir(osp.join(gt, sub))]
    for folder in folders:
        if osp.isfile(osp.join(folder, name)):
            return osp.join(folder, name)
        for ext in IMAGE_EXTENSIONS:
            if osp.isfile(osp.join(folder, hr_stem + ext)):
                return osp.join(folder, hr_stem + ext)
    if not osp.isdir(gt):
        raise UserError(f'--gt {gt} is not a folder; pass the folder of ground-truth images')
    raise UserError(f'--gt {gt} has no ground truth for {name} (looked for {name} and {hr_stem}.png there and in '
                    'HR/ or GTmod12/); name ground-truth files like the inputs or point --gt at the HR folder')
