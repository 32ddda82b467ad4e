"""VDSRModel: the paper's training step, with adjustable (or fixed-norm) gradient clipping.

Adjustable clipping keeps every gradient in [-θ/γ, θ/γ], γ the current learning rate, so the step size stays
bounded while the high initial rate (0.1) decays: `train: grad_clip: {type: adjustable, theta: 0.4}`.
`{type: norm, max_norm: 0.4}` clips the global norm instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from basicsr.utils.registry import MODEL_REGISTRY

from core.errors import UserError
from core.training.models.ir_model import IRModel


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


@MODEL_REGISTRY.register()
class VDSRModel(IRModel):
    def adjust_gradients(self, current_iter: int) -> None:
        clip_gradients(self.net_g.parameters(), self.opt['train'].get('grad_clip'),
                       self.optimizer_g.param_groups[0]['lr'])
