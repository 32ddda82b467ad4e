"""Build the demo data from scikit-image's bundled images (no download): python scripts/make_demo_data.py"""

import argparse
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import core  # noqa: E402,F401
from core.data.demo_data import build_demo_data  # noqa: E402
from core.errors import run_cli  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--root', default='datasets/demo', help='output folder (default: datasets/demo)')
    parser.add_argument('--scales', type=int, nargs='+', default=[2, 3, 4])
    parser.add_argument('--overwrite', action='store_true', help='replace an existing folder')
    args = parser.parse_args()
    root = build_demo_data(args.root, args.scales, overwrite=args.overwrite)
    print(f'demo data written to {root} (train/ and held-out val/, EDSR layout)')


if __name__ == '__main__':
    run_cli(main)
