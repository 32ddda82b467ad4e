"""What a forward costs in multiply-accumulates, for every table and report that states it."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_macs(net: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward on an input of `shape` (N, C, H, W).

    torch's FLOP counter (2 FLOPs per MAC) runs on a meta-device copy: the count costs no arithmetic, so a 720p
    frame through VDSR is as quick to count as a patch.
    """
    meta = copy.deepcopy(net).to('meta')
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.empty(shape, device='meta'))
    return counter.get_total_flops() // 2
