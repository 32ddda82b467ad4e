"""Prepare DIV2K for training: HR sub-images, MATLAB-bicubic LR sub-images, meta-info and (optionally) lmdb.

python scripts/prepare_div2k.py --input datasets/DIV2K/DIV2K_train_HR --output datasets/DIV2K --lmdb
python scripts/prepare_div2k.py --input datasets/DIV2K/DIV2K_train_HR --format bmp   # a loader that never decodes

Writes under --output: DIV2K_train_HR_sub/, DIV2K_train_LR_bicubic_sub/X{2,3,4}/ (same file names as the HR
sub-images), meta_info_DIV2K_sub.txt and, with --lmdb, DIV2K_train_HR_sub.lmdb and
DIV2K_train_LR_bicubic_X{s}_sub.lmdb. Each output appears only once it is complete. `--format bmp` stores the
sub-images uncompressed (1.8× the disk of PNG): the training loader then skips PNG decoding, which on 2 cores is
most of its time (docs/training.md, "Feeding the step").
"""

import argparse
import contextlib
import os
from functools import partial
from multiprocessing import Pool
from os import path as osp

import cv2
from tqdm import tqdm

import core  # noqa: F401  (registers everything into basicsr)
from core.data.layouts import image_files
from core.data.preparation import (
    SUBIMAGE_FORMATS,
    as_bgr,
    bicubic_downscale,
    build_lmdb,
    extract_subimages,
    staged_folder,
    write_image,
    write_meta_info,
)
from core.errors import UserError, run_cli


def process_image(path: str, hr_dir: str, lr_dirs: dict[int, str], crop: int, step: int, thresh: int,
                  fmt: str = 'png') -> list[tuple[str, tuple[int, ...]]]:
    """Cut one HR image into sub-images and write each with its LR versions; returns meta-info entries."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UserError(f'cannot read {path} as an image')
    stem = osp.splitext(osp.basename(path))[0]
    entries = []
    for k, tile in enumerate(extract_subimages(as_bgr(img), crop, step, thresh), start=1):
        name = f'{stem}_s{k:03d}.{fmt}'
        write_image(osp.join(hr_dir, name), tile)
        for scale, lr_dir in lr_dirs.items():
            write_image(osp.join(lr_dir, name), bicubic_downscale(tile, scale))
        entries.append((name, tile.shape))
    return entries


def prepare(input_dir: str, output_dir: str, scales: list[int], crop: int, step: int, thresh: int, workers: int,
            make_lmdb: bool, overwrite: bool, fmt: str = 'png') -> list[str]:
    """Run the whole preparation; returns the paths it wrote."""
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
        work = partial(process_image, hr_dir=hr_dir, lr_dirs=lr_dirs, crop=crop, step=step, thresh=thresh, fmt=fmt)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', required=True, help='folder of DIV2K HR images (DIV2K_train_HR)')
    parser.add_argument('--output', default='datasets/DIV2K', help='where the prepared folders go')
    parser.add_argument('--scales', type=int, nargs='+', default=[2, 3, 4])
    parser.add_argument('--crop-size', type=int, default=480, help='HR sub-image size (divisible by every scale)')
    parser.add_argument('--step', type=int, default=240, help='stride between sub-images')
    parser.add_argument('--thresh', type=int, default=0,
                        help='add a last, border-flush sub-image only if more than this many pixels are left over')
    parser.add_argument('--workers', type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument('--lmdb', action='store_true', help='also pack every folder into lmdb')
    parser.add_argument('--format', choices=SUBIMAGE_FORMATS, default='png',
                        help='png (compact) or bmp (uncompressed: the loader skips decoding, 1.8x the disk)')
    parser.add_argument('--overwrite', action='store_true', help='replace existing outputs')
    args = parser.parse_args()
    written = prepare(args.input, args.output, args.scales, args.crop_size, args.step, args.thresh, args.workers,
                      args.lmdb, args.overwrite, args.format)
    print('wrote:\n  ' + '\n  '.join(written))


if __name__ == '__main__':
    run_cli(main)
