"""IRModel: basicsr's SRModel with safe checkpoints, CPU-capable DDP and multi-output networks.

Every model of ours builds on this. Overrides, each for a named reason:
- `load_network`: weights_only loading of raw or {params, params_ema} files; a misfit names its key.
- `save`: one atomic file {params, params_ema, meta}; meta records the network type and arguments.
- `save_training_state`: atomic, so a crash mid-write never leaves a state that resume then trusts; it
  records the data position and every RNG, so resume continues exactly (core.engine).
- `model_to_device`: DistributedDataParallel without device_ids on CPU (basicsr assumes CUDA).
- `test`: networks whose forward returns a tuple (training forms) are evaluated on their first output.
- `get_optimizer`: any torch.optim class by name (basicsr 1.4.2 builds only Adam; VDSR trains with SGD).
- `nondist_validation`: for Y-channel data (`color: y`) metrics stay on Y, and saved images are rebuilt in
  colour from the super-resolved Y and the LR image's CbCr upscaled with MATLAB bicubic.
- quantization-aware training (`train: qat`, core.deploy.qat): at `start_iter` the network becomes its deploy
  form with 8-bit fake quantization; checkpoints, resume and EMA follow it.
- `optimize_parameters`: one step for every model, optionally compiled and autocast (`train: compile`, `amp`;
  core.models.fast_step). Subclasses change only `training_losses` and `adjust_gradients`.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import time
from collections import OrderedDict
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

from core.archs.network import first_output
from core.checkpoint import atomic_save, load_checkpoint, load_into, network_meta, save_checkpoint
from core.data.resumable import rng_states
from core.errors import UserError
from core.models.fast_step import (
    StepOptions,
    float_outputs,
    named_compile_errors,
    quiet_cpu_only_cuda_notice,
    step_options,
)


@MODEL_REGISTRY.register()
class IRModel(SRModel):
    """Single-image SR training and testing, with the plugin's checkpoint format."""

    qat_options: dict | None = None  # train:qat, checked
    qat_meta: dict | None = None  # set once the network is the fake-quantized deploy graph
    progress: dict | None = None  # the data position after the last step (core.engine), saved with the state
    step_options = StepOptions()
    _compiled: tuple[nn.Module, nn.Module] | None = None  # (the module compiled, its compiled wrapper)

    def init_training_settings(self) -> None:
        self.step_options = step_options(self.opt['train'])
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
            from core.engine import CONSOLE

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

    def start_qat_if_due(self, current_iter: int) -> None:
        """From train:qat:start_iter on, train the deploy form with 8-bit fake quantization (core.deploy.qat)."""
        if self.qat_options is None or self.qat_meta is not None or current_iter < self.qat_options['start_iter']:
            return
        from core.deploy.qat import prepare_qat, rescaled_for_qat

        network = self.opt['network_g']
        arch, args, deploy = self._deploy_form(self.get_bare_model(self.net_g), network)
        deploy, rescaling = rescaled_for_qat(deploy, self.lq)
        get_root_logger().info(f'QAT: {rescaling}; the EMA restarts from it.')
        self.net_g = self.model_to_device(prepare_qat(copy.deepcopy(deploy).to(self.device)))
        self.net_g.train()
        if hasattr(self, 'net_g_ema'):  # the same rescaled weights: an EMA of differently scaled ones means nothing
            self.net_g_ema = prepare_qat(deploy.to(self.device))
            self.net_g_ema.eval()  # torchao's train/eval for exported graphs return None: no chaining
        self.qat_meta = {'arch': arch, 'args': args, 'qat': self.qat_options}
        self._rebind_optimizers()
        get_root_logger().info(f'QAT from iteration {current_iter}: training {arch} with int8 fake quantization '
                               '(per-channel weights, pixel-exact input/output).')

    @staticmethod
    def _deploy_form(net: nn.Module, network: dict) -> tuple[str, dict, nn.Module]:
        """The deployable network QAT trains (core.deploy.model.deploy_form), with the fold's error logged."""
        from core.deploy.model import deploy_form

        arch, args = network['type'], {k: v for k, v in network.items() if k != 'type'}
        target_arch, target_args, target, diff = deploy_form(net, arch, args)
        if diff is not None:
            get_root_logger().info(f'QAT: {arch} folded into {target_arch} (max abs difference {diff:.2g}).')
        return target_arch, target_args, target

    def _rebind_optimizers(self) -> None:
        """New optimizers for the new parameters, keeping the learning rate and the schedule's position."""
        optimizers, schedulers = [], []
        for old in self.optimizers:
            new = type(old)(self.get_bare_model(self.net_g).parameters(), **old.defaults)
            for group, old_group in zip(new.param_groups, old.param_groups, strict=False):
                group['lr'] = old_group['lr']
                group['initial_lr'] = old_group.get('initial_lr', old_group['lr'])
            optimizers.append(new)
        for old, optimizer in zip(self.schedulers, optimizers, strict=True):
            new = copy.copy(old)
            new.optimizer = optimizer
            schedulers.append(new)
        self.optimizers, self.schedulers = optimizers, schedulers
        self.optimizer_g = optimizers[0]

    def model_ema(self, decay: float = 0.999) -> None:
        super().model_ema(decay)
        if self.qat_meta is not None:  # the fake-quant ranges are running statistics, not parameters: copy them
            ema_buffers = dict(self.net_g_ema.named_buffers())
            for name, buffer in self.get_bare_model(self.net_g).named_buffers():
                ema_buffers[name].resize_(buffer.shape).copy_(buffer)  # per-channel ranges start with shape [1]

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

    def _load_qat(self, net: nn.Module, state: dict, meta: dict, load_path: str) -> None:
        """A QAT checkpoint replaces the network it is loaded into by the fake-quantized graph it holds."""
        from core.deploy.qat import qat_network

        graph = qat_network(meta['arch'], meta['args'], state, load_path).to(self.device)
        if net is getattr(self, 'net_g_ema', None):
            self.net_g_ema = graph
        else:
            self.net_g = self.model_to_device(graph)
        self.qat_meta = {'arch': meta['arch'], 'args': meta['args'], 'qat': meta['qat']}
        get_root_logger().info(f"Loaded the QAT graph of {meta['arch']} from {load_path}.")

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
