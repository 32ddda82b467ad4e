"""IRModel: basicsr's SRModel with safe checkpoints, CPU-capable DDP and multi-output networks.

Every model of ours builds on this. Overrides, each for a named reason:
- `load_network`: weights_only loading of raw or {params, params_ema} files; a misfit names its key.
- `save`: one atomic file {params, params_ema, meta}; meta records the network type and arguments.
- `save_training_state`: atomic, so a crash mid-write never leaves a state that resume then trusts.
- `model_to_device`: DistributedDataParallel without device_ids on CPU (basicsr assumes CUDA).
- `test`: networks whose forward returns a tuple (training forms) are evaluated on their first output.
- `get_optimizer`: any torch.optim class by name (basicsr 1.4.2 builds only Adam; VDSR trains with SGD).
- `nondist_validation`: for Y-channel data (`color: y`) metrics stay on Y, and saved images are rebuilt in
  colour from the super-resolved Y and the LR image's CbCr upscaled with MATLAB bicubic.
"""

from __future__ import annotations

import inspect
import os
from os import path as osp

import cv2
import numpy as np
import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils import bgr2ycbcr, get_root_logger, imwrite, ycbcr2bgr
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.registry import MODEL_REGISTRY
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from core.archs.shared import first_output
from core.checkpoint import atomic_save, load_checkpoint, load_into, network_meta, save_checkpoint
from core.errors import UserError


@MODEL_REGISTRY.register()
class IRModel(SRModel):
    """Single-image SR training and testing, with the plugin's checkpoint format."""

    def model_to_device(self, net: nn.Module) -> nn.Module:
        if self.opt['dist'] and self.device.type == 'cpu':
            net = net.to(self.device)
            return DistributedDataParallel(net, find_unused_parameters=self.opt.get('find_unused_parameters', False))
        return super().model_to_device(net)

    def get_optimizer(self, optim_type: str, params, lr: float, **kwargs) -> torch.optim.Optimizer:
        optimizer = getattr(torch.optim, optim_type, None)
        if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
            raise UserError(f"unknown optimizer '{optim_type}' in train:optim_g; use a torch.optim class such as "
                            'Adam, AdamW or SGD')
        if 'foreach' in inspect.signature(optimizer).parameters:
            kwargs.setdefault('foreach', True)  # torch enables multi-tensor steps only on CUDA by default
        return optimizer(params, lr, **kwargs)

    def load_network(self, net: nn.Module, load_path: str, strict: bool = True,
                     param_key: str | None = 'params') -> None:
        net = self.get_bare_model(net)
        state, _ = load_checkpoint(load_path, param_key=param_key)
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
        meta = network_meta(self.opt['network_g'], iter=current_iter, name=self.opt['name'])
        save_checkpoint(path, self.get_bare_model(self.net_g).state_dict(), meta, params_ema=ema)
        get_root_logger().info(f'Saved {path}')
        self.save_training_state(epoch, current_iter)

    def save_training_state(self, epoch: int, current_iter: int) -> None:
        if current_iter == -1 or self.opt['rank'] != 0:
            return
        state = {'epoch': epoch, 'iter': current_iter,
                 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers]}
        os.makedirs(self.opt['path']['training_states'], exist_ok=True)
        atomic_save(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img: bool) -> None:
        colour_from_y = save_img and dataloader.dataset.opt.get('color') == 'y'
        super().nondist_validation(dataloader, current_iter, tb_logger, save_img and not colour_from_y)
        if colour_from_y:
            self._save_colour_from_y(dataloader, current_iter)

    def _save_colour_from_y(self, dataloader, current_iter) -> None:
        """Save SR Y + bicubic-upscaled LR CbCr as a BGR image, where basicsr would save the image."""
        dataset_name = dataloader.dataset.opt['name']
        scale = int(dataloader.dataset.opt['scale'])
        for data in dataloader:
            self.feed_data(data)
            self.test()
            y = self.output[0, 0].detach().cpu().clamp(0, 1).numpy().astype(np.float32)
            lq = cv2.imread(data['lq_path'][0], cv2.IMREAD_COLOR).astype(np.float32) / 255.0
            cbcr = imresize(bgr2ycbcr(lq)[..., 1:], scale)[:y.shape[0], :y.shape[1]]
            bgr = ycbcr2bgr(np.concatenate([y[..., None], cbcr], axis=2).astype(np.float32))
            name = osp.splitext(osp.basename(data['lq_path'][0]))[0]
            suffix = self.opt['val'].get('suffix') or self.opt['name']
            if self.opt['is_train']:
                path = osp.join(self.opt['path']['visualization'], name, f'{name}_{current_iter}.png')
            else:
                path = osp.join(self.opt['path']['visualization'], dataset_name, f'{name}_{suffix}.png')
            imwrite((np.clip(bgr, 0, 1) * 255.0).round().astype(np.uint8), path)

    def test(self) -> None:
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        was_training = net.training
        net.eval()
        with torch.no_grad():
            self.output = first_output(net(self.lq))
        net.train(was_training)
