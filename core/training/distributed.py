"""Distributed start-up for `--launcher pytorch` (named fix 3 in core/__init__.py).

`basicsr.utils.dist_util.init_dist` hard-codes NCCL and divides by `torch.cuda.device_count()`, so it fails on a
CPU machine; torchrun on CPU wants gloo.
"""

from __future__ import annotations

import os

import torch

from core.errors import UserError


def init_distributed(launcher: str) -> None:
    """Start the process group for `--launcher pytorch`: NCCL with CUDA, gloo without."""
    if launcher == 'none':
        return
    if launcher != 'pytorch':
        raise UserError(f"launcher '{launcher}' is not supported here; use --launcher pytorch with torchrun")
    import torch.distributed as dist

    if torch.cuda.is_available():
        local_rank = int(os.environ.get('LOCAL_RANK', 0))
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dist.init_process_group(backend='nccl')
    else:
        dist.init_process_group(backend='gloo')
