"""Checks on parsed options that turn basicsr's KeyErrors into one-line errors naming the fix."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from basicsr.utils.registry import DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from core.archs.network_options import check_network, require_registered
from core.errors import UserError


def check_registered(opt: Mapping) -> None:
    """Every `type` the options name must be registered (network, model, loss, dataset, metric)."""
    for key in ('network_g', 'network_d'):
        if isinstance(opt.get(key), Mapping):
            check_network(key, opt[key])
    if 'model_type' in opt:
        require_registered('model', opt['model_type'], MODEL_REGISTRY, 'model_type')
    for key, value in (opt.get('train') or {}).items():
        if key.endswith('_opt') and isinstance(value, Mapping):
            require_registered('loss', value.get('type'), LOSS_REGISTRY, f'train:{key}')
    for phase, dataset in (opt.get('datasets') or {}).items():
        if isinstance(dataset, Mapping):
            require_registered('dataset', dataset.get('type'), DATASET_REGISTRY, f'datasets:{phase}')
    for name, metric in ((opt.get('val') or {}).get('metrics') or {}).items():
        if isinstance(metric, Mapping):
            require_registered('metric', metric.get('type'), METRIC_REGISTRY, f'val:metrics:{name}')


def check_training(opt: Mapping) -> None:
    """Training options basicsr accepts but that cannot train (today it would save an untrained model)."""
    total = opt['train'].get('total_iter')
    if isinstance(total, bool) or not isinstance(total, (int, float)) or total < 1:
        raise UserError(f'train:total_iter is {total!r}; set it to the number of iterations to train (at least 1)')


def check_devices(options: dict) -> None:
    """`num_gpu` must name devices this machine has: basicsr would fail deep inside CUDA otherwise."""
    num_gpu = options.get('num_gpu', 0)
    if num_gpu in (0, 'auto', None):
        return
    if not isinstance(num_gpu, int) or isinstance(num_gpu, bool) or num_gpu < 0:
        raise UserError(f"num_gpu: {num_gpu!r} is not a number of GPUs; use 0 (CPU), 'auto' or a count")
    available = torch.cuda.device_count()
    if available == 0:
        raise UserError(f'num_gpu: {num_gpu} but this machine has no CUDA GPU; set num_gpu: 0 to run on the CPU '
                        '(or pass --force_yml num_gpu=0)')
    if num_gpu > available:
        raise UserError(f"num_gpu: {num_gpu} but this machine has {available} GPU(s); set num_gpu: {available} "
                        "or 'auto'")
