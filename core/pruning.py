"""L1 filter pruning that physically removes filters, for plain conv chains such as VDSR.

torch.nn.utils.prune picks, per conv, the output filters with the smallest L1 norm; the removal (a new,
narrower dense model with the kept rows and columns copied) is ours, since prune only masks.
"""

from __future__ import annotations

import copy
import os
import tempfile

import torch
from torch import nn
from torch.nn.utils import prune

from core.archs.vdsr_arch import VDSR


def l1_kept_filters(conv: nn.Conv2d, sparsity: float) -> torch.Tensor:
    """Indices (ascending) of the output filters that survive L1-norm structured pruning at `sparsity`."""
    probe = copy.deepcopy(conv)
    prune.ln_structured(probe, name='weight', amount=sparsity, n=1, dim=0)
    return torch.nonzero(probe.weight_mask.flatten(1).any(dim=1)).flatten()


@torch.no_grad()
def prune_vdsr(net: VDSR, sparsity: float) -> VDSR:
    """A dense VDSR with `sparsity` of every hidden conv's filters removed (the 1-channel output conv is kept)."""
    kept = [l1_kept_filters(conv, sparsity) for conv in net.hidden_convs]
    pruned = VDSR(upscale=net.upscale, widths=[len(k) for k in kept], num_channels=net.input.in_channels)
    previous = torch.arange(net.input.in_channels)
    for source, target, rows in zip(net.hidden_convs, pruned.hidden_convs, kept, strict=True):
        target.weight.copy_(source.weight[rows][:, previous])
        previous = rows
    pruned.output.weight.copy_(net.output.weight[:, previous])
    return pruned


def conv_macs(net: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of a same-resolution conv chain on one height×width input."""
    return sum(m.weight.numel() * height * width for m in net.modules() if isinstance(m, nn.Conv2d))


def onnx_size(net: VDSR, height: int = 64, width: int = 64) -> int:
    """Bytes of the ONNX file of the network's conv graph (on an already-upsampled input)."""
    graph = copy.deepcopy(net).eval()
    graph.upscale = 1
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'model.onnx')
        torch.onnx.export(graph, torch.rand(1, graph.input.in_channels, height, width), path, dynamo=False,
                          input_names=['y'], output_names=['sr'])
        return os.path.getsize(path)
