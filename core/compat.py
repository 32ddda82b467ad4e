"""Named fixes for basicsr 1.4.2 on current torch/torchvision.

basicsr 1.4.2 is the last release and is stale in four places. Each fix below is explicit, small and
tested; nothing in basicsr is patched behind the user's back.

1. `basicsr.data.degradations` imports `torchvision.transforms.functional_tensor`, which torchvision
   0.17 renamed to `_functional_tensor`. `alias_functional_tensor()` registers the old module name.
   It must run before the first `import basicsr`, which is why `core/__init__.py` calls it first.
2. `basicsr.train.load_resume_state` maps tensors with `torch.cuda.current_device()`, so resume fails
   on CPU. `load_resume_state()` maps to the model's device and loads with `weights_only=True`.
3. `basicsr.utils.dist_util.init_dist` hard-codes NCCL and divides by `torch.cuda.device_count()`.
   `init_distributed()` picks gloo on CPU and NCCL on CUDA.
4. `basicsr.utils.options.parse_options` rejects `--local-rank` (what `torch.distributed.launch`
   passes) and initialises NCCL itself. `parse_options()` accepts both spellings, sets up the process
   group with fix 3, then hands the rest to basicsr's parser.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from os import path as osp
from typing import Any

import torch


def alias_functional_tensor() -> None:
    """Make `torchvision.transforms.functional_tensor` importable again (renamed in torchvision 0.17)."""
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        sys.modules[name] = importlib.import_module('torchvision.transforms._functional_tensor')


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


def build_argument_parser() -> argparse.ArgumentParser:
    """The options basicsr takes, plus `--local-rank`, which torch.distributed.launch passes."""
    parser = argparse.ArgumentParser()
    parser.add_argument('-opt', type=str, required=True, help='Path to option YAML file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none', help='job launcher')
    parser.add_argument('--auto_resume', action='store_true')
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local-rank', '--local_rank', dest='local_rank', type=int, default=0)
    parser.add_argument('--datasets', nargs='+', default=None, metavar='NAME',
                        help='test.py only: evaluate just these datasets (by name), e.g. --datasets Set5 Set14')
    parser.add_argument('--force_yml', nargs='+', default=None,
                        help='Override YAML values, e.g. train:total_iter=100 datasets:train:batch_size_per_gpu=4')
    return parser


def parse_options(root_path: str, is_train: bool, argv: Sequence[str] | None = None) -> tuple[dict, Any]:
    """basicsr's option parsing, with gloo-capable distributed set-up and `--local-rank` accepted."""
    from basicsr.utils.dist_util import get_dist_info
    from basicsr.utils.options import parse_options as basicsr_parse_options

    from core.errors import UserError

    args = build_argument_parser().parse_args(argv)
    if not osp.isfile(args.opt):
        raise UserError(f'option file {args.opt} does not exist; pass an existing YAML with -opt')
    init_distributed(args.launcher)
    forwarded = ['-opt', args.opt]
    if args.auto_resume:
        forwarded.append('--auto_resume')
    if args.debug:
        forwarded.append('--debug')
    if args.force_yml:
        forwarded += ['--force_yml', *args.force_yml]
    with _argv(forwarded):
        try:
            opt, _ = basicsr_parse_options(root_path, is_train=is_train)
        except KeyError as err:
            raise UserError(f'option file {args.opt} lacks the key {err}; compare it with configs/') from None
    opt['dist'] = args.launcher != 'none'
    opt['rank'], opt['world_size'] = get_dist_info()
    opt['root_path'] = root_path
    return opt, args


def load_resume_state(opt: dict) -> dict | None:
    """basicsr's resume-state lookup, but mapped to the model's device and loaded with weights_only."""
    from basicsr.utils import check_resume, scandir

    from core.errors import UserError

    path = None
    if opt['auto_resume']:
        state_dir = osp.join(opt['root_path'], 'experiments', opt['name'], 'training_states')
        if osp.isdir(state_dir):
            states = [int(v.split('.state')[0]) for v in scandir(state_dir, suffix='state', recursive=False)]
            if states:
                path = osp.join(state_dir, f'{max(states)}.state')
                opt['path']['resume_state'] = path
    else:
        path = opt['path'].get('resume_state')
    if path is None:
        return None
    if not osp.isfile(path):
        raise UserError(f'resume state {path} does not exist; fix path.resume_state or use --auto_resume')
    device = torch.device('cuda', torch.cuda.current_device()) if opt['num_gpu'] != 0 else torch.device('cpu')
    state = torch.load(path, map_location=device, weights_only=True)
    check_resume(opt, state['iter'])
    return state
