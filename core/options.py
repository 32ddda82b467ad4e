"""Checks on parsed options that turn basicsr's KeyErrors into one-line errors naming the fix."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping

import torch
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from core.errors import UserError


def _require(kind: str, name: object, registry, where: str) -> None:
    if name not in registry:
        known = ', '.join(sorted(registry.keys()))
        raise UserError(f"unknown {kind} type '{name}' in {where}; registered {kind} types: {known}")


def check_registered(opt: Mapping) -> None:
    """Every `type` the options name must be registered (network, model, loss, dataset, metric)."""
    for key in ('network_g', 'network_d'):
        if isinstance(opt.get(key), Mapping):
            _require('network', opt[key].get('type'), ARCH_REGISTRY, key)
            _check_arguments(key, opt[key])
    if 'model_type' in opt:
        _require('model', opt['model_type'], MODEL_REGISTRY, 'model_type')
    for key, value in (opt.get('train') or {}).items():
        if key.endswith('_opt') and isinstance(value, Mapping):
            _require('loss', value.get('type'), LOSS_REGISTRY, f'train:{key}')
    for phase, dataset in (opt.get('datasets') or {}).items():
        if isinstance(dataset, Mapping):
            _require('dataset', dataset.get('type'), DATASET_REGISTRY, f'datasets:{phase}')
    for name, metric in ((opt.get('val') or {}).get('metrics') or {}).items():
        if isinstance(metric, Mapping):
            _require('metric', metric.get('type'), METRIC_REGISTRY, f'val:metrics:{name}')


def _check_arguments(key: str, network: Mapping) -> None:
    """The network's options must fit its constructor; name ours when a basicsr class of that name was picked."""
    cls = ARCH_REGISTRY.get(network['type'])
    args = {k: v for k, v in network.items() if k != 'type'}
    try:
        signature = inspect.signature(cls, eval_str=True)
        signature.bind(**args)
    except TypeError as err:
        hint = ''
        ours = [name for name, obj in ARCH_REGISTRY
                if obj.__name__ == cls.__name__ and obj.__module__.startswith('core.')]
        if not cls.__module__.startswith('core.') and ours:
            hint = f"; this is basicsr's {cls.__name__}, ours is registered as type: {ours[0]}"
        raise UserError(f'{key} ({network["type"]}) does not accept these options: {err}; '
                        f"it takes ({', '.join(inspect.signature(cls).parameters)}){hint}") from None
    for name, value in args.items():
        expected = _simple_types(signature.parameters[name].annotation)
        if expected and not _is_instance(value, expected):
            wanted = ' or '.join(t.__name__ for t in expected)
            raise UserError(f'{key}:{name} is {value!r} ({type(value).__name__}) but {network["type"]} takes '
                            f'{wanted} there; fix {name} in network_g')


def _simple_types(annotation: object) -> tuple[type, ...]:
    """The plain types an annotation allows (`int`, `int | None`); empty when it says more than that."""
    members = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    simple = (int, float, bool, str, type(None))
    return tuple(members) if all(m in simple for m in members) else ()


def _is_instance(value: object, expected: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # YAML's true is not a number of blocks
        return bool in expected
    if isinstance(value, int) and float in expected:
        return True
    return isinstance(value, expected)


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
