"""VDSRModel: the paper's training step, with adjustable (or fixed-norm) gradient clipping.

Adjustable clipping keeps every gradient in [-θ/γ, θ/γ], γ the current learning rate, so the step size stays
bounded while the high initial rate (0.1) decays: `train: grad_clip: {type: adjustable, theta: 0.4}`.
`{type: norm, max_norm: 0.4}` clips the global norm instead.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import torch
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn import functional as F
from tqdm import tqdm

from core.errors import UserError
from core.models.ir_model import IRModel


def clip_gradients(params: Iterable[torch.nn.Parameter], clip: Mapping | None, lr: float) -> None:
    """Clip gradients in place as `clip` says (None: no clipping)."""
    if not clip:
        return
    params = [p for p in params if p.grad is not None]
    if clip['type'] == 'adjustable':
        torch.nn.utils.clip_grad_value_(params, clip['theta'] / lr)
    elif clip['type'] == 'norm':
        torch.nn.utils.clip_grad_norm_(params, clip['max_norm'])
    else:
        raise UserError(f"unknown grad_clip type '{clip['type']}'; use adjustable (theta) or norm (max_norm)")


def sgd_steps(net: torch.nn.Module, dataset: torch.utils.data.Dataset, iters: int, batch: int, lr: float,
              momentum: float = 0.9, weight_decay: float = 1e-4, theta: float = 0.4, drop_last: bool = False,
              progress: str | None = None) -> list[float]:
    """The VDSR step (SGD, MSE, adjustable clipping) outside basicsr's loop, for scripts: `iters` batches cycling
    over `dataset`. Returns the losses; it stops early at a non-finite one, which is then the last."""
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


@MODEL_REGISTRY.register()
class VDSRModel(IRModel):
    def optimize_parameters(self, current_iter: int) -> None:
        self.start_qat_if_due(current_iter)
        self.optimizer_g.zero_grad(set_to_none=True)
        self.output = self.net_g(self.lq)
        loss = self.cri_pix(self.output, self.gt)
        loss.backward()
        clip_gradients(self.net_g.parameters(), self.opt['train'].get('grad_clip'),
                       self.optimizer_g.param_groups[0]['lr'])
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(OrderedDict(l_pix=loss))
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
