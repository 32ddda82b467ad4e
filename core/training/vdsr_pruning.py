"""L1 filter pruning of VDSR, and what it changes (parameters, MACs, ONNX bytes, Y-PSNR).

torch.nn.utils.prune picks, per conv, the output filters with the smallest L1 norm; the removal (a new, narrower
dense model with the kept rows and columns copied) is ours, since prune only masks. scripts/prune_vdsr.py is its
command line.
"""

from __future__ import annotations

import copy
import os
import tempfile

import torch
from torch import nn
from torch.nn.utils import prune

from core.archs.cost import count_macs
from core.archs.vdsr_arch import VDSR
from core.convert.resolver import load_network
from core.deploy.paired_psnr import y_psnr
from core.errors import UserError
from core.training.vdsr_sgd import sgd_steps, vdsr_training_patches

MAC_SIZE = (720, 1280)  # MACs are reported for one 720p Y frame


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


def load_vdsr(path: str, scale: int) -> VDSR:
    """A VDSR checkpoint (core.convert.resolver: its meta gives the widths, or its shapes do), upsampling by `scale`
    as it evaluates."""
    arch, _, net = load_network(path)
    if not isinstance(net, VDSR):
        raise UserError(f'{path} holds a {arch}, not a VDSR')
    scaled = VDSR(upscale=scale, widths=net.widths, num_channels=net.input.in_channels)
    scaled.load_state_dict(net.state_dict())
    return scaled


def fine_tune(net: VDSR, hr_folder: str, iters: int, batch: int, lr: float, theta: float) -> None:
    """The VDSR training step on the already-upsampled patches (the net's own bicubic input is bypassed)."""
    dataset = vdsr_training_patches(hr_folder, 'finetune')
    upscale, net.upscale = net.upscale, 1
    sgd_steps(net, dataset, iters, batch, lr, theta=theta, drop_last=len(dataset) >= batch, progress='fine-tune')
    net.upscale = upscale
    net.eval()


def onnx_size(net: VDSR, height: int = 64, width: int = 64) -> int:
    """Bytes of the ONNX file of the network's conv graph (on an already-upsampled input)."""
    graph = copy.deepcopy(net).eval()
    graph.upscale = 1
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'model.onnx')
        torch.onnx.export(graph, torch.rand(1, graph.input.in_channels, height, width), path, dynamo=False,
                          input_names=['y'], output_names=['sr'])
        return os.path.getsize(path)


def _frame_macs(net: VDSR) -> int:
    graph = copy.deepcopy(net)
    graph.upscale = 1  # the conv chain on an already-upsampled frame, as the paper counts it
    return count_macs(graph, (1, graph.input.in_channels, *MAC_SIZE))


def size_report(net: VDSR, eval_data: str | None, scale: int) -> dict:
    """What pruning changes: parameters, MACs on a 720p frame, ONNX bytes, and Y-PSNR when a benchmark is given."""
    return {'params': sum(p.numel() for p in net.parameters()), 'GMACs (720p)': _frame_macs(net) / 1e9,
            'ONNX bytes': onnx_size(net), 'Y-PSNR': y_psnr(net, eval_data, scale, color='y') if eval_data else None}
