"""Command-line front ends that answer before torch loads: arguments, the option file, output paths.

Standard library and PyYAML only (`import core` is light), so `--help`, a missing file, a YAML syntax error or a
bad `--force_yml` answer in a fraction of a second; torch, basicsr and the registration (`core.plugin`) load only
once the arguments are checked.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
from collections.abc import Callable, Sequence
from os import path as osp
from typing import Any

import yaml

from core.errors import UserError, run_cli


def image_size(minimum: int = 1) -> Callable[[str], tuple[int, int]]:
    """An argparse `type` for HEIGHTxWIDTH ('360x640'), each side at least `minimum` pixels."""

    def parse(text: str) -> tuple[int, int]:
        match = re.fullmatch(r'(\d+)[xX](\d+)', text.strip())
        if match is None:
            raise argparse.ArgumentTypeError(f"'{text}' is not HEIGHTxWIDTH, e.g. 360x640")
        size = int(match[1]), int(match[2])
        if min(size) < minimum:
            raise argparse.ArgumentTypeError(f"'{text}' is too small; use at least {minimum}x{minimum}")
        return size

    return parse


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
    args.options = read_options(args.opt, args.force_yml or [])
    return args


def run_pipeline(root: str, is_train: bool) -> None:
    """The body of train.py and test.py: checked arguments first, then torch, basicsr and the pipeline."""
    args = run_cli(lambda: parse_option_args(is_train))

    import core.plugin  # noqa: F401  (registers our archs, models and datasets into basicsr)
    from core import engine

    pipeline = engine.train_pipeline if is_train else engine.evaluate_pipeline
    run_cli(lambda: pipeline(root, args=args))


def read_options(path: str, overrides: Sequence[str]) -> dict:
    """The option file as a dict with the `--force_yml` overrides applied, or a one-line error naming the fix."""
    if not osp.isfile(path):
        raise UserError(f'option file {path} does not exist; pass an existing YAML with -opt')
    try:
        with open(path, encoding='utf-8') as handle:
            options = yaml.safe_load(handle)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f'{path}:{mark.line + 1}:{mark.column + 1}' if mark else path
        raise UserError(f'{where}: YAML syntax error ({err.problem or err.context}); fix the file there') from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f'{path} is not a readable YAML file ({err}); compare it with configs/') from None
    if not isinstance(options, dict):
        raise UserError(f'{path} holds a {type(options).__name__}, not a mapping of options; compare it with configs/')
    for entry in overrides:
        apply_override(options, entry)
    return options


def apply_override(options: dict, entry: str) -> None:
    """Set one `a:b:c=value` in place; the key must exist and the value must have its type."""
    if '=' not in entry:
        raise UserError(f"--force_yml '{entry}' has no '='; write KEY:PATH=VALUE, e.g. train:total_iter=1000")
    keys_text, value_text = (part.strip() for part in entry.split('=', 1))
    keys = keys_text.split(':')
    node: Any = options
    for depth, key in enumerate(keys):
        where = ':'.join(keys[:depth]) or 'the top level'
        if not isinstance(node, dict):
            raise UserError(f"--force_yml {keys_text}: {where} is a value, not a section; check the key path")
        if key not in node:
            close = difflib.get_close_matches(key, [str(k) for k in node], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; it has: {', '.join(map(str, node))}"
            raise UserError(f"--force_yml {keys_text}: '{key}' is not in {where}{hint}")
        if depth < len(keys) - 1:
            node = node[key]
    old = node[keys[-1]]
    try:
        new = yaml.safe_load(value_text) if value_text else None
    except yaml.YAMLError:
        new = value_text
    if isinstance(old, float) and isinstance(new, str):
        with contextlib.suppress(ValueError):
            new = float(new)  # YAML 1.1 reads 1e-3 as text; a learning rate is written that way
    node[keys[-1]] = _typed_like(old, new, keys_text, value_text)


def _typed_like(old: Any, new: Any, key: str, text: str) -> Any:
    """The new value if it has the old one's type (an int where a float was is fine), else a one-line error."""
    if old is None or new is None:
        return new
    if isinstance(old, dict):
        raise UserError(f'--force_yml {key}={text}: {key} is a section; override its keys one by one')
    if isinstance(old, bool) or isinstance(new, bool):
        if isinstance(old, bool) and isinstance(new, bool):
            return new
    elif isinstance(old, int) and isinstance(new, int):
        return new
    elif isinstance(old, float) and isinstance(new, (int, float)):
        return float(new)
    elif isinstance(old, str):
        return new if isinstance(new, str) else text
    elif isinstance(old, list) and isinstance(new, list):
        return new
    examples = {bool: 'true or false', int: 'a whole number such as 1000', float: 'a number such as 0.0005',
                list: 'a list such as [1, 2]'}
    expected = examples.get(type(old), type(old).__name__)
    raise UserError(f"--force_yml {key}={text}: {key} takes {expected} (it is {old!r} in the YAML)")


def check_output_path(output: str, flag: str = '--output') -> None:
    """The output's folder must be (or become) a writable folder; say so before any work is done."""
    folder = osp.dirname(osp.abspath(output))
    existing = folder
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise UserError(f'{flag} {output}: {existing} is a file, not a folder; choose another output path')
    if osp.isdir(output):
        raise UserError(f'{flag} {output} is a folder; give a file name')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f'{flag} {output}: the folder {existing} is not writable; choose a writable folder')


def refuse_overwriting_input(input_path: str, output_path: str) -> None:
    """Tools that write a new checkpoint never replace the one they read."""
    if osp.exists(output_path) and osp.exists(input_path) and osp.samefile(input_path, output_path):
        raise UserError(f'--output {output_path} is the input file; choose another output path')


def check_input_file(path: str, flag: str) -> None:
    if not osp.isfile(path):
        raise UserError(f'{flag} {path} does not exist; check the path')
