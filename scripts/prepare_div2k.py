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
import os

from core.errors import run_cli  # standard library only: --help still answers before torch loads


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    parser.add_argument('--format', default='png',
                        help='png (compact) or bmp (uncompressed: the loader skips decoding, 1.8x the disk)')
    parser.add_argument('--overwrite', action='store_true', help='replace existing outputs')
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> None:
    from core.data.preparation import prepare_div2k

    written = prepare_div2k(args.input, args.output, args.scales, args.crop_size, args.step, args.thresh,
                            args.workers, args.lmdb, args.overwrite, args.format)
    print('wrote:\n  ' + '\n  '.join(written))


if __name__ == '__main__':
    arguments = parse_args()
    run_cli(lambda: main(arguments))
