"""Safe checkpoint I/O: weights-only loading of raw or basicsr-style files, and atomic saving.

Read: a raw state_dict (as the official upstream files are) or basicsr's `{'params', 'params_ema'}`,
optionally with our `meta`. Written: `{'params', ['params_ema'], 'meta': {'arch', 'args', ...}}`.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Mapping
from os import path as osp
from typing import Any

import torch
from torch import nn

from core.errors import UserError

PARAM_KEYS = ('params_ema', 'params')


def load_checkpoint(path: str, param_key: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Return `(state_dict, meta)` from a checkpoint file, refusing anything but tensors.

    `param_key` picks 'params' or 'params_ema' in a basicsr-style file; None prefers the EMA weights.
    """
    if not osp.isfile(path):
        raise UserError(f'checkpoint {path} does not exist; check the path')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f'{path} is not a weights-only tensor checkpoint ({first_line}); '
                        're-save it as a state_dict of tensors') from None
    if not isinstance(ckpt, Mapping):
        raise UserError(f'{path} holds a {type(ckpt).__name__}, not a state_dict; save model.state_dict() instead')
    meta = dict(ckpt.get('meta', {})) if isinstance(ckpt.get('meta'), Mapping) else {}
    wrapped = [k for k in PARAM_KEYS if isinstance(ckpt.get(k), Mapping)]
    if wrapped:
        if param_key is None:
            key = wrapped[0]
        elif param_key in wrapped:
            key = param_key
        elif param_key == 'params_ema':
            key = 'params'  # basicsr's own fallback when a run had no EMA
        else:
            raise UserError(f"{path} has no '{param_key}' entry (it has {wrapped}); set param_key_g accordingly")
        state = ckpt[key]
    else:
        state = {k: v for k, v in ckpt.items() if k != 'meta'}
    clean: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise UserError(f"{path}: entry '{key}' is a {type(value).__name__}, not a tensor; "
                            'pass a state_dict or a basicsr {params, params_ema} checkpoint')
        clean[key.removeprefix('module.')] = value
    return clean, meta


def first_mismatch(net: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """Describe the first key where `state` does not fit `net`, or None when it fits exactly."""
    expected = net.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            return f"'{key}' is missing from the checkpoint"
        if tuple(state[key].shape) != tuple(tensor.shape):
            return (f"'{key}' has shape {tuple(state[key].shape)} in the checkpoint "
                    f'but {tuple(tensor.shape)} in the model')
    for key in state:
        if key not in expected:
            return f"'{key}' is in the checkpoint but not in the model"
    return None


def load_into(net: nn.Module, state: Mapping[str, torch.Tensor], source: str = 'checkpoint',
              strict: bool = True) -> list[str]:
    """Load `state` into `net`; a misfit names its first mismatching key instead of a long traceback.

    With strict=False every tensor whose key and shape fit is copied (e.g. an x2 model into an x4 one) and
    the model's keys left at their initial values are returned.
    """
    problem = first_mismatch(net, state)
    if problem is not None and strict:
        raise UserError(f'{source} does not fit {type(net).__name__}: {problem}; '
                        'check network_g (type and sizes) against the checkpoint')
    own = net.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not strict and not fitting:
        raise UserError(f'{source} shares no tensor with {type(net).__name__}; check pretrain_network_g')
    net.load_state_dict(fitting, strict=strict)
    return [k for k in own if k not in fitting]


def refuse_overwriting_input(input_path: str, output_path: str) -> None:
    """Tools that write a new checkpoint never replace the one they read."""
    if osp.exists(output_path) and osp.exists(input_path) and osp.samefile(input_path, output_path):
        raise UserError(f'--output {output_path} is the input file; choose another output path')


def atomic_save(obj: Any, path: str) -> None:
    """torch.save to a temporary file beside `path`, then rename: readers never see half a file."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as handle:
            torch.save(obj, handle)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def network_meta(network_opt: Mapping[str, Any], **extra: Any) -> dict:
    """The metadata that lets later tools rebuild a network without guessing: type and arguments."""
    args = {k: v for k, v in network_opt.items() if k != 'type'}
    return {'arch': network_opt['type'], 'args': _plain(args), **extra}


def _plain(value: Any) -> Any:
    """OrderedDicts and tuples from YAML become dicts and lists, which weights_only loading accepts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_checkpoint(path: str, params: Mapping[str, torch.Tensor], meta: Mapping[str, Any],
                    params_ema: Mapping[str, torch.Tensor] | None = None) -> None:
    """Write our checkpoint format atomically, with tensors on the CPU."""
    ckpt: dict[str, Any] = {'params': {k: v.detach().cpu() for k, v in params.items()}}
    if params_ema is not None:
        ckpt['params_ema'] = {k: v.detach().cpu() for k, v in params_ema.items()}
    ckpt['meta'] = _plain(dict(meta))
    atomic_save(ckpt, path)
