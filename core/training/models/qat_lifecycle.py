"""Quantization-aware training inside a basicsr model (`train: qat`, core.deploy.qat).

At `start_iter` the network becomes its deploy form with 8-bit fake quantization; the optimizers, the schedule,
the EMA and the checkpoints follow it. A mixin of IRModel (basicsr's SRModel underneath).
"""

from __future__ import annotations

import copy

from basicsr.utils import get_root_logger
from torch import nn


class QATLifecycle:
    qat_options: dict | None = None  # train:qat, checked
    qat_meta: dict | None = None  # set once the network is the fake-quantized deploy graph

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
        """New optimizers for the new parameters, keeping the learning rate and the schedule's position.

        The schedulers are built anew by basicsr (`setup_schedulers`) and given the old ones' state: a scheduler
        copied onto a new optimizer would not see its steps and warns that `optimizer.step()` was overridden.
        """
        optimizers = []
        for old in self.optimizers:
            new = type(old)(self.get_bare_model(self.net_g).parameters(), **old.defaults)
            for group, old_group in zip(new.param_groups, old.param_groups, strict=False):
                group['lr'] = old_group['lr']
                group['initial_lr'] = old_group.get('initial_lr', old_group['lr'])
            optimizers.append(new)
        states = [scheduler.state_dict() for scheduler in self.schedulers]
        kind = type(self.schedulers[0]).__name__  # basicsr popped the type out of train:scheduler the first time
        self.opt['train']['scheduler'] = {'type': kind, **self.opt['train']['scheduler']}
        self.optimizers, self.optimizer_g, self.schedulers = optimizers, optimizers[0], []
        self.setup_schedulers()
        for scheduler, state in zip(self.schedulers, states, strict=True):
            scheduler.load_state_dict(state)
        for optimizer, scheduler in zip(self.optimizers, self.schedulers, strict=True):
            for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr(), strict=True):
                group['lr'] = lr

    def model_ema(self, decay: float = 0.999) -> None:
        super().model_ema(decay)
        if self.qat_meta is not None:  # the fake-quant ranges are running statistics, not parameters: copy them
            ema_buffers = dict(self.net_g_ema.named_buffers())
            for name, buffer in self.get_bare_model(self.net_g).named_buffers():
                ema_buffers[name].resize_(buffer.shape).copy_(buffer)  # per-channel ranges start with shape [1]

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
