"""VDSR's tools outside basicsr's loop: L1 filter pruning, the SGD step on multi-scale patches, TPE search.

scripts/prune_vdsr.py and scripts/search_vdsr_hparams.py are thin command lines over this module.
torch.nn.utils.prune picks, per conv, the output filters with the smallest L1 norm; the removal (a new,
narrower dense model with the kept rows and columns copied) is ours, since prune only masks. optuna's TPE
sampler searches the training hyper-parameters; its SQLite storage makes a study resumable.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import sys
import tempfile
from os import path as osp
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import prune
from tqdm import tqdm

from core.archs.vdsr_arch import VDSR
from core.checkpoint import load_checkpoint, load_into
from core.data.multiscale_y_dataset import MultiScaleYDataset
from core.errors import UserError
from core.evaluation import y_psnr
from core.models.vdsr_model import clip_gradients

if TYPE_CHECKING:
    import optuna

MAC_SIZE = (720, 1280)  # MACs are reported for one 720p Y frame


# --- data and the training step -------------------------------------------------------------------------------------

def vdsr_training_patches(hr_folder: str, name: str) -> MultiScaleYDataset:
    """The paper's training set: 41×41 Y patches at x2/x3/x4, flips and rotations."""
    return MultiScaleYDataset({'name': name, 'phase': 'train', 'scale': 2, 'scales': [2, 3, 4],
                               'dataroot_gt': hr_folder, 'patch_size': 41, 'use_hflip': True, 'use_rot': True})


def sgd_steps(net: nn.Module, dataset: torch.utils.data.Dataset, iters: int, batch: int, lr: float,
              momentum: float = 0.9, weight_decay: float = 1e-4, theta: float = 0.4, drop_last: bool = False,
              progress: str | None = None) -> list[float]:
    """The VDSR step (SGD, MSE, adjustable clipping) for `iters` batches cycling over `dataset`.

    Returns the losses; it stops early at a non-finite one, which is then the last.
    """
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=drop_last)
    batches = itertools.islice(itertools.chain.from_iterable(itertools.repeat(loader)), iters)
    if progress:
        batches = tqdm(batches, total=iters, desc=progress, unit='iter')
    net.train()
    losses = []
    for data in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(net(data['lq']), data['gt'])
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            break
        loss.backward()
        if theta > 0:
            clip_gradients(net.parameters(), {'type': 'adjustable', 'theta': theta}, lr)
        optimizer.step()
    return losses


# --- pruning --------------------------------------------------------------------------------------------------------

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
    """A VDSR checkpoint (pruned or not: its meta gives the widths), upsampling by `scale` as it evaluates."""
    state, meta = load_checkpoint(path)
    if meta.get('arch', 'VDSR') != 'VDSR':
        raise UserError(f"{path} holds a {meta['arch']}, not a VDSR")
    net = VDSR(upscale=scale, widths=meta.get('args', {}).get('widths'))
    load_into(net, state, source=path)
    return net


def fine_tune(net: VDSR, hr_folder: str, iters: int, batch: int, lr: float, theta: float) -> None:
    """The VDSR training step on the already-upsampled patches (the net's own bicubic input is bypassed)."""
    dataset = vdsr_training_patches(hr_folder, 'finetune')
    upscale, net.upscale = net.upscale, 1
    sgd_steps(net, dataset, iters, batch, lr, theta=theta, drop_last=len(dataset) >= batch, progress='fine-tune')
    net.upscale = upscale
    net.eval()


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


def size_report(net: VDSR, eval_data: str | None, scale: int) -> dict:
    """What pruning changes: parameters, MACs on a 720p frame, ONNX bytes, and Y-PSNR when a benchmark is given."""
    return {'params': sum(p.numel() for p in net.parameters()), 'GMACs (720p)': conv_macs(net, *MAC_SIZE) / 1e9,
            'ONNX bytes': onnx_size(net), 'Y-PSNR': y_psnr(net, eval_data, scale, color='y') if eval_data else None}


# --- TPE search -----------------------------------------------------------------------------------------------------

def sample_hparams(trial: optuna.Trial) -> dict:
    return {'lr': trial.suggest_float('lr', 0.05, 1.0, log=True),
            'momentum': trial.suggest_float('momentum', 0.0, 1.0),
            'weight_decay': trial.suggest_categorical('weight_decay', [1e-4, 1e-5]),
            'batch': trial.suggest_categorical('batch', [64, 128, 256, 512]),
            'theta': trial.suggest_float('clip', 0.0, 1.0)}


def short_training(hp: dict, dataset: MultiScaleYDataset, iters: int, widths: list[int] | None, seed: int) -> float:
    """Train a fresh VDSR for `iters` steps; the mean loss of the last quarter (inf if it diverged)."""
    torch.manual_seed(seed)
    net = VDSR(widths=widths).train()
    losses = sgd_steps(net, dataset, iters, hp['batch'], hp['lr'], hp['momentum'], hp['weight_decay'], hp['theta'])
    if not math.isfinite(losses[-1]):
        return math.inf
    tail = losses[-max(1, len(losses) // 4):]
    return sum(tail) / len(tail)


def run_search(train_data: str, storage: str, trials: int, iters: int, widths: list[int] | None, seed: int = 0,
               study_name: str = 'vdsr') -> optuna.Study:
    """Run (or continue) the study until it has `trials` finished trials."""
    import optuna  # here, so the pruning command does not pay for importing the search library

    dataset = vdsr_training_patches(train_data, 'search')
    os.makedirs(osp.dirname(osp.abspath(storage)), exist_ok=True)
    study = optuna.create_study(study_name=study_name, storage=f'sqlite:///{storage}', direction='minimize',
                                load_if_exists=True)
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    study.sampler = optuna.samplers.TPESampler(seed=seed + done)  # a resumed study must not replay its first draws
    remaining = max(0, trials - done)
    if remaining:
        print(f'{done} trials already in {storage}; running {remaining} more', flush=True)
        study.optimize(lambda t: short_training(sample_hparams(t), dataset, iters, widths, seed + t.number),
                       n_trials=remaining, show_progress_bar=sys.stderr.isatty())
    return study
