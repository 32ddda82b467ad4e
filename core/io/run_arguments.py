"""The arguments of train.py and test.py, with the option file they name read and checked.

Standard library and PyYAML only: `--help`, a missing file, a YAML syntax error or a bad `--force_yml` answer in a
fraction of a second. core.training.option_parsing hands the checked result to basicsr's parser.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from core.io.option_file import read_options


def options_parser(is_train: bool) -> argparse.ArgumentParser:
    """basicsr's options plus `--local-rank` (what torch.distributed.launch passes); --datasets for test.py."""
    script = 'train.py' if is_train else 'test.py'
    parser = argparse.ArgumentParser(prog=script, description=(
        'Train a network from a YAML (configs/train/).' if is_train else
        'Evaluate a checkpoint on the datasets of a YAML (configs/test/).'))
    parser.add_argument('-opt', type=str, required=True, help='path to the option YAML')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                        help='pytorch: one process per rank under torchrun (gloo on CPU, NCCL on CUDA)')
    if is_train:
        parser.add_argument('--auto_resume', action='store_true',
                            help='continue from the newest complete training state of this experiment')
    else:
        parser.set_defaults(auto_resume=False)
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local-rank', '--local_rank', dest='local_rank', type=int, default=0)
    if not is_train:
        parser.add_argument('--datasets', nargs='+', default=None, metavar='NAME',
                            help='evaluate just these datasets (by name), e.g. --datasets Set5 Set14')
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY:PATH=VALUE',
                        help='override YAML values, e.g. train:total_iter=100 datasets:train:batch_size_per_gpu=4')
    return parser


def parse_option_args(is_train: bool, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse train.py / test.py arguments and read the option file; `args.options` holds the checked dict."""
    args = options_parser(is_train).parse_args(argv)
    args.translations = []
    args.options = read_options(args.opt, args.force_yml or [], args.translations)
    for line in args.translations:  # the authors' dialect, read as ours: say each change once
        print(f"{args.opt}: the authors' option: {line}", flush=True)
    return args
