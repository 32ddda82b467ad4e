"""ETDSModel: trains the dual-stream ETDS with the paper's interpolation loss and residual freezing.

loss = L(out, gt) + α·L(residual_out, gt), α = train.interpolation_loss_weight.
With N = train.fixed_residual_model_iters, the residual stream (K_r) and the connections reading it (K_r2b) keep
their nearest-neighbour initialisation through iteration N−1, and iteration N is the first to update them: the
authors' ETDSModel unfreezes in `update_learning_rate` when `current_iter == N`, which runs before that step.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from core.training.models.ir_model import IRModel


@MODEL_REGISTRY.register()
class ETDSModel(IRModel):
    def init_training_settings(self) -> None:
        train_opt = self.opt['train']
        self.interpolation_loss_weight = float(train_opt.get('interpolation_loss_weight', 0.0))
        self.fixed_residual_model_iters = int(train_opt.get('fixed_residual_model_iters', 0))
        bare = self.get_bare_model(self.net_g)
        self.residual_params = list(getattr(bare, 'residual_stream_parameters', list)())
        super().init_training_settings()
        get_root_logger().info(
            f'ETDS: interpolation loss weight {self.interpolation_loss_weight}; residual stream '
            f'({sum(p.numel() for p in self.residual_params)} params) frozen before iteration '
            f'{self.fixed_residual_model_iters}.')

    def residual_frozen(self, current_iter: int) -> bool:
        return current_iter < self.fixed_residual_model_iters

    def training_losses(self, output: torch.Tensor | tuple) -> tuple[torch.Tensor, OrderedDict]:
        sr, residual = output if isinstance(output, (tuple, list)) else (output, None)
        loss_dict = OrderedDict()
        loss = loss_dict['l_pix'] = self.cri_pix(sr, self.gt)
        if residual is not None and self.interpolation_loss_weight > 0:
            loss_dict['l_interp'] = self.cri_pix(residual, self.gt)
            loss = loss + self.interpolation_loss_weight * loss_dict['l_interp']
        return loss, loss_dict

    def adjust_gradients(self, current_iter: int) -> None:
        if self.residual_frozen(current_iter):
            for param in self.residual_params:
                param.grad = None  # the optimizer skips a parameter without a gradient: frozen, moments untouched
