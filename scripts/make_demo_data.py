"""Build the demo data from scikit-image's bundled images (no download): python scripts/make_demo_data.py"""

import argparse

from core.errors import run_cli  # standard library only: --help still answers before torch loads


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--root', default='datasets/demo', help='output folder (default: datasets/demo)')
    parser.add_argument('--scales', type=int, nargs='+', default=[2, 3, 4])
    parser.add_argument('--overwrite', action='store_true', help='replace an existing folder')
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> None:
    import core.plugin  # noqa: F401  (registers everything into basicsr)
    from core.data.demo_data import build_demo_data

    root = build_demo_data(args.root, args.scales, overwrite=args.overwrite)
    print(f'demo data written to {root} (train/ and held-out val/, EDSR layout)')


if __name__ == '__main__':
    arguments = parse_args()
    run_cli(lambda: main(arguments))
