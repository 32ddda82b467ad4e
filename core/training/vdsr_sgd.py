"""VDSR's own training step outside basicsr's loop: SGD with adjustable gradient clipping on multi-scale Y patches.

Pruning fine-tunes with it and the TPE search scores trials with it.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from core.data.multiscale_y_dataset import MultiScaleYDataset
from core.training.models.vdsr_model import clip_gradients


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
