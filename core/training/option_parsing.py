"""basicsr's option parsing of arguments core.io.run_arguments checked (named fix 4 in core/__init__.py).

`basicsr.utils.options.parse_options` rejects `--local-rank` (what `torch.distributed.launch` passes), initialises
NCCL itself, and applies `--force_yml` unchecked (a misspelt key is added, a value's type is guessed). Here the
process group starts with core.training.distributed, and basicsr parses the checked file.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from collections.abc import Iterator, Sequence
from os import path as osp
from typing import Any


@contextlib.contextmanager
def _argv(argv: Sequence[str]) -> Iterator[None]:
    """basicsr's parser reads sys.argv; give it exactly the arguments we forward."""
    saved = sys.argv
    sys.argv = [saved[0] if saved else 'basicsr', *argv]
    try:
        yield
    finally:
        sys.argv = saved


@contextlib.contextmanager
def _option_file(args: Any) -> Iterator[str]:
    """The file basicsr should parse: the user's own, or a temporary copy with the checked overrides applied (or the
    authors' dialect translated).

    basicsr applies `--force_yml` without checking keys or types (core.io.option_file does), so it gets the result.
    """
    if not args.force_yml and not args.translations:
        yield args.opt
        return
    import yaml

    with tempfile.TemporaryDirectory(prefix='options_') as folder:
        path = osp.join(folder, osp.basename(args.opt))
        with open(path, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(args.options, handle, sort_keys=False)
        yield path


def parse_options(root_path: str, is_train: bool, argv: Sequence[str] | None = None,
                  args: Any = None) -> tuple[dict, Any]:
    """basicsr's option parsing of checked options (core.io.run_arguments), with gloo-capable distributed set-up.

    `args` is what core.io.run_arguments.parse_option_args returned (the entry scripts parse before importing torch);
    without it `argv` is parsed here. basicsr's "Disable distributed." print is dropped: the header says it.
    """
    from basicsr.utils.dist_util import get_dist_info
    from basicsr.utils.options import parse_options as basicsr_parse_options

    from core.errors import UserError
    from core.io.run_arguments import parse_option_args
    from core.training.distributed import init_distributed
    from core.training.option_checks import check_devices

    if args is None:
        args = parse_option_args(is_train, argv)
    check_devices(args.options)  # before init_distributed: NCCL would fail first
    init_distributed(args.launcher)
    with _option_file(args) as option_file:
        forwarded = ['-opt', option_file] + ['--auto_resume'] * args.auto_resume + ['--debug'] * args.debug
        with _argv(forwarded), contextlib.redirect_stdout(io.StringIO()):
            try:
                opt, _ = basicsr_parse_options(root_path, is_train=is_train)
            except KeyError as err:
                raise UserError(f'option file {args.opt} lacks the key {err}; compare it with configs/') from None
    opt['dist'] = args.launcher != 'none'
    opt['rank'], opt['world_size'] = get_dist_info()
    opt['root_path'] = root_path
    return opt, args
