"""IRModel: basicsr's SRModel with safe checkpoints, CPU-capable DDP, multi-output networks and QAT.

Every model of ours builds on this. Its parts, each for a named reason:
- checkpoints and training states (`load_network`, `save`, `save_training_state`): checkpoint_files.py;
- quantization-aware training (`train: qat`): qat_lifecycle.py;
- `optimize_parameters`: one step for every model, optionally compiled and autocast (`train: compile`, `amp`;
  fast_step.py). Subclasses change only `training_losses` and `adjust_gradients`;
- `model_to_device`: DistributedDataParallel without device_ids on CPU (basicsr assumes CUDA);
- `test`: networks whose forward returns a tuple (training forms) are evaluated on their first output;
- `get_optimizer`: any torch.optim class by name (basicsr 1.4.2 builds only Adam; VDSR trains with SGD);
- `nondist_validation`: for Y-channel data (`color: y`) metrics stay on Y, and saved images are rebuilt in
  colour from the super-resolved Y and the LR image's CbCr upscaled with MATLAB bicubic.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections import OrderedDict
from os import path as osp

import numpy as np
import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, imwrite
from basicsr.utils.registry import MODEL_REGISTRY
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from core.archs.network import first_output
from core.data.colour import colour_from_y
from core.errors import UserError
from core.io.image_file import decode_bgr8, read_file_bytes
from core.training.console import CONSOLE
from core.training.models.checkpoint_files import CheckpointFiles
from core.training.models.fast_step import (
    StepOptions,
    amp_warning,
    float_outputs,
    named_compile_errors,
    quiet_cpu_only_cuda_notice,
    step_options,
)
from core.training.models.qat_lifecycle import QATLifecycle


@MODEL_REGISTRY.register()
class IRModel(QATLifecycle, CheckpointFiles, SRModel):
    """Single-image SR training and testing, with the plugin's checkpoint format."""

    step_options = StepOptions()
    _compiled: tuple[nn.Module, nn.Module] | None = None  # (the module compiled, its compiled wrapper)

    def init_training_settings(self) -> None:
        self.step_options = step_options(self.opt['train'])
        if warning := amp_warning(self.step_options, self.device):
            get_root_logger().warning(warning)
        self.grad_scaler = self.step_options.grad_scaler(self.device)
        if self.opt['train'].get('qat') is not None:
            from core.deploy.qat import check_qat_options

            self.qat_options = check_qat_options(self.opt['train']['qat'])
            if self.opt['dist']:
                raise UserError('train:qat runs in one process; train without --launcher, or drop train:qat')
        super().init_training_settings()

    def optimize_parameters(self, current_iter: int) -> None:
        """Forward (compiled and autocast if asked), losses in fp32, backward, gradient hooks, step, EMA."""
        self.start_qat_if_due(current_iter)
        compiling = self.step_options.compile and self._compiled is None
        started = time.perf_counter()
        self.optimizer_g.zero_grad(set_to_none=True)
        with named_compile_errors() if compiling else contextlib.nullcontext():
            with self.step_options.autocast(self.device):
                output = self.training_forward()(self.lq)
            output = float_outputs(output)
            self.output = first_output(output)
            loss, loss_dict = self.training_losses(output)
            self.grad_scaler.scale(loss).backward()
        self.grad_scaler.unscale_(self.optimizer_g)  # hooks see true gradients (a no-op without fp16 scaling)
        self.adjust_gradients(current_iter)
        self.grad_scaler.step(self.optimizer_g)
        self.grad_scaler.update()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
        if compiling:
            get_root_logger().info(f'train:compile: the first step took {time.perf_counter() - started:.1f} s '
                                   '(tracing and compiling forward and backward); later steps reuse it.',
                                   extra=CONSOLE)

    def training_forward(self) -> nn.Module:
        """The network as training calls it: compiled once per network when train:compile is set.

        Validation and saving use `net_g` itself, so other input sizes never trigger a recompile.
        """
        if not self.step_options.compile:
            return self.net_g
        if self._compiled is None or self._compiled[0] is not self.net_g:
            quiet_cpu_only_cuda_notice()
            self._compiled = (self.net_g, torch.compile(self.net_g))
        return self._compiled[1]

    def training_losses(self, output: torch.Tensor | tuple) -> tuple[torch.Tensor, OrderedDict]:
        """The loss to minimise and the terms to log, from the network's (fp32) output."""
        loss_dict = OrderedDict()
        sr = first_output(output)
        terms = []
        if self.cri_pix:
            loss_dict['l_pix'] = self.cri_pix(sr, self.gt)
            terms.append(loss_dict['l_pix'])
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(sr, self.gt)
            for name, term in (('l_percep', l_percep), ('l_style', l_style)):
                if term is not None:
                    loss_dict[name] = term
                    terms.append(term)
        return sum(terms[1:], terms[0]), loss_dict

    def adjust_gradients(self, current_iter: int) -> None:
        """Between backward and the optimizer step (ETDS freezes a stream here; VDSR clips)."""

    def model_to_device(self, net: nn.Module) -> nn.Module:
        if self.opt['dist'] and self.device.type == 'cpu':
            net = net.to(self.device)
            # our models give every parameter a gradient (ETDS masks frozen ones after backward), so DDP need
            # not search for unused ones, which costs a graph walk per step and warns on every rank
            return DistributedDataParallel(net, find_unused_parameters=self.opt.get('find_unused_parameters', False))
        return super().model_to_device(net)

    def get_optimizer(self, optim_type: str, params, lr: float, **kwargs) -> torch.optim.Optimizer:
        optimizer = getattr(torch.optim, optim_type, None)
        if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
            raise UserError(f"unknown optimizer '{optim_type}' in train:optim_g; use a torch.optim class such as "
                            'Adam, AdamW or SGD')
        if 'foreach' in inspect.signature(optimizer).parameters and not kwargs.get('fused'):
            kwargs.setdefault('foreach', True)  # torch enables multi-tensor steps only on CUDA by default
        return optimizer(params, lr, **kwargs)

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
            lq = decode_bgr8(data['lq_path'][0], read_file_bytes(data['lq_path'][0])).astype(np.float32) / 255.0
            bgr = colour_from_y(y, lq, scale)
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
