"""How a basicsr model reads and writes its files: weights_only loading of raw or {params, params_ema} files (a
misfit names its key), one atomic file {params, params_ema, meta} per save (meta records the network type and
arguments), and atomic training states that record the data position and every RNG, so resume is exact.
A mixin of IRModel (basicsr's SRModel underneath).
"""

from __future__ import annotations

import os
from os import path as osp

from basicsr.utils import get_root_logger
from torch import nn

from core.data.resumable import rng_states
from core.io.checkpoint import atomic_save, load_checkpoint, load_into, network_meta, save_checkpoint


class CheckpointFiles:
    progress: dict | None = None  # the data position after the last step (core.training.loop), saved with the state

    def load_network(self, net: nn.Module, load_path: str, strict: bool = True,
                     param_key: str | None = 'params') -> None:
        net = self.get_bare_model(net)
        state, meta = load_checkpoint(load_path, param_key=param_key)
        if meta.get('qat'):
            self._load_qat(net, state, meta, load_path)
            return
        kept = load_into(net, state, source=load_path, strict=strict)
        logger = get_root_logger()
        logger.info(f'Loaded {type(net).__name__} from {load_path} [{param_key}].')
        if kept:
            logger.info(f'Not in {load_path} with this shape, so left at initialisation: {", ".join(kept)}')

    def save(self, epoch: int, current_iter: int) -> None:
        if self.opt['rank'] != 0:
            return
        label = 'latest' if current_iter == -1 else current_iter
        path = osp.join(self.opt['path']['models'], f'net_g_{label}.pth')
        ema = self.net_g_ema.state_dict() if hasattr(self, 'net_g_ema') else None
        network = self.opt['network_g'] if self.qat_meta is None else {'type': self.qat_meta['arch'],
                                                                      **self.qat_meta['args']}
        extra = {} if self.qat_meta is None else {'qat': self.qat_meta['qat']}
        meta = network_meta(network, iter=current_iter, name=self.opt['name'], **extra)
        save_checkpoint(path, self.get_bare_model(self.net_g).state_dict(), meta, params_ema=ema)
        get_root_logger().info(f'Saved {path}')
        self.save_training_state(epoch, current_iter)

    def save_training_state(self, epoch: int, current_iter: int) -> None:
        if current_iter == -1 or self.opt['rank'] != 0:
            return
        state = {'epoch': epoch, 'iter': current_iter,
                 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers],
                 'progress': self.progress, 'rng': rng_states()}
        if self.grad_scaler.is_enabled():
            state['grad_scaler'] = self.grad_scaler.state_dict()
        os.makedirs(self.opt['path']['training_states'], exist_ok=True)
        atomic_save(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def resume_training(self, resume_state: dict) -> None:
        super().resume_training(resume_state)
        if self.grad_scaler.is_enabled() and 'grad_scaler' in resume_state:
            self.grad_scaler.load_state_dict(resume_state['grad_scaler'])
