"""Named fixes for basicsr 1.4.2 on current torch/torchvision.

basicsr 1.4.2 is the last release and is stale in four places. Each fix below is explicit, small and
tested; nothing in basicsr is patched behind the user's back.

1. `basicsr.data.degradations` imports `torchvision.transforms.functional_tensor`, which torchvision
   0.17 renamed to `_functional_tensor`. core.torchvision_alias (installed by `import core`, torch-free)
   answers the old name with the renamed module when basicsr asks for it.
2. `basicsr.train.load_resume_state` maps tensors with `torch.cuda.current_device()`, so resume fails
   on CPU. core.resume.find_resume_point loads on the CPU with `weights_only=True` (the optimizers'
   load_state_dict moves their state to the parameters' device).
3. `basicsr.utils.dist_util.init_dist` hard-codes NCCL and divides by `torch.cuda.device_count()`.
   `init_distributed()` picks gloo on CPU and NCCL on CUDA.
4. `basicsr.utils.options.parse_options` rejects `--local-rank` (what `torch.distributed.launch`
   passes), initialises NCCL itself, and applies `--force_yml` unchecked (a misspelt key is added, a
   value's type is guessed). `parse_options()` takes the arguments and overrides core.cli checked, sets
   up the process group with fix 3, then hands the resulting file to basicsr's parser.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from os import path as osp
from typing import Any

import torch


def init_distributed(launcher: str) -> None:
    """Start the process group for `--launcher pytorch`: NCCL with CUDA, gloo without."""
    if launcher == 'none':
        return
    if launcher != 'pytorch':
        from core.errors import UserError

        raise UserError(f"launcher '{launcher}' is not supported here; use --launcher pytorch with torchrun")
    import torch.distributed as dist

    if torch.cuda.is_available():
        local_rank = int(os.environ.get('LOCAL_RANK', 0))
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dist.init_process_group(backend='nccl')
    else:
        dist.init_process_group(backend='gloo')


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
    """The file basicsr should parse: the user's own, or a temporary copy with the checked overrides applied.

    basicsr applies `--force_yml` itself without checking keys or types (core.cli does), so it gets the result.
    """
    if not args.force_yml:
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
    """basicsr's option parsing of checked options (core.cli), with gloo-capable distributed set-up.

    `args` is what core.cli.parse_option_args returned (the entry scripts parse before importing torch);
    without it `argv` is parsed here. basicsr's "Disable distributed." print is dropped: the header says it.
    """
    from basicsr.utils.dist_util import get_dist_info
    from basicsr.utils.options import parse_options as basicsr_parse_options

    from core.cli import parse_option_args
    from core.errors import UserError
    from core.options import check_devices

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
