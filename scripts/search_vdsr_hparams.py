"""TPE hyper-parameter search for VDSR training with optuna; resumable from its storage file.

python scripts/search_vdsr_hparams.py --train-data datasets/DIV2K/DIV2K_train_HR_sub --trials 50

Each trial trains VDSR briefly (SGD, adjustable clipping, multi-scale 41×41 Y patches) with sampled lr
(log-uniform 0.05–1), momentum (0–1), weight decay {1e-4, 1e-5}, batch {64, 128, 256, 512} and clip θ (0–1),
and reports its final loss (the mean of the last quarter of steps). The study lives in an SQLite file, so
running the command again continues it up to --trials finished trials.
"""

import argparse
from os import path as osp

from core.errors import run_cli  # standard library only: --help still answers before torch loads


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--train-data', required=True, help='folder of HR images')
    parser.add_argument('--storage', default='experiments/vdsr_tpe/study.db', help='SQLite file (resumable)')
    parser.add_argument('--trials', type=int, default=20, help='finished trials wanted in the study')
    parser.add_argument('--iters', type=int, default=200, help='training steps per trial')
    parser.add_argument('--widths', type=int, nargs='+', default=None, help='VDSR hidden widths (default 19 × 64)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if not osp.isdir(args.train_data):
        parser.error(f'--train-data {args.train_data} is not a folder of HR images')
    return args


def main(args: argparse.Namespace) -> None:
    import optuna

    import core.plugin  # noqa: F401  (registers everything into basicsr)
    from core.training.vdsr_search import run_search

    optuna.logging.set_verbosity(optuna.logging.INFO)  # one line per finished trial
    study = run_search(args.train_data, args.storage, args.trials, args.iters, args.widths, args.seed)
    best = study.best_trial
    print(f'best trial #{best.number}: final loss {best.value:.6g} with {best.params}; study in {args.storage}')


if __name__ == '__main__':
    arguments = parse_args()
    run_cli(lambda: main(arguments))
