"""Safe checkpoint I/O: weights-only loading of raw, basicsr-style or safetensors files, and atomic saving.

Read: a raw state_dict (as the official upstream files are) or basicsr's `{'params', 'params_ema'}`,
optionally with our `meta`. Written: `{'params', ['params_ema'], 'meta': {'arch', 'args', ...}}`.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from os import path as osp
from typing import Any

import torch
from torch import nn

from core.errors import UserError
from core.io.staging import staged_file

PARAM_KEYS = ('params_ema', 'params')


class NotWeightsOnly(UserError):
    """A file that would run pickled code: refused, never skipped over or retried."""


def load_checkpoint(path: str, param_key: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Return `(state_dict, meta)` from a .pth or .safetensors file, refusing anything but finite tensors.

    `param_key` picks 'params' or 'params_ema' in a basicsr-style file; None prefers the EMA weights.
    """
    if not osp.isfile(path):
        raise UserError(f'checkpoint {path} does not exist; check the path')
    ckpt = _read_safetensors(path) if _is_safetensors(path) else read_weights_only(path, 'checkpoint')
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
    refuse_non_finite(clean, path)
    return clean, meta


def read_weights_only(path: str, what: str) -> Any:
    """torch.load with weights_only=True; an unreadable or non-weights-only file is a one-line UserError."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        if 'weights only' in str(err).lower():
            found = re.search(r'Unsupported global: GLOBAL ([\w.]+)', str(err))
            holds = f' (it pickles {found.group(1)})' if found else ''
            raise NotWeightsOnly(f'{path} is not a weights-only tensor {what}{holds}; re-save it as a state_dict '
                                 'of tensors, and load only files you trust') from None
        raise UserError(_unreadable(path, what, err)) from None
    except Exception as err:  # noqa: BLE001  (torch raises many types for damaged files: all mean the same here)
        raise UserError(_unreadable(path, what, err)) from None


def _unreadable(path: str, what: str, err: Exception) -> str:
    text = str(err).strip().splitlines()[0].split('. ')[0] if str(err).strip() else ''
    detail = text[:100] if re.search('[a-zA-Z]{3}', text) else f'{type(err).__name__} {text}'.strip()
    return (f'{path} is not a readable {what} ({detail}); it is truncated, damaged or not a PyTorch/safetensors '
            'file')


def refuse_non_finite(state: Mapping[str, torch.Tensor], source: str) -> None:
    """NaN or Inf weights give garbage (a PSNR of 7 dB) without any error downstream: name the first one here."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            kind = 'NaN' if bool(torch.isnan(tensor).any()) else 'Inf'
            raise UserError(f"{source}: '{key}' holds {kind} values; the weights are broken (did training diverge?) "
                            '- use an earlier checkpoint')


SAFETENSORS_META_KEY = 'mobile_sr_meta'


def _is_safetensors(path: str) -> bool:
    """safetensors files start with the header's length (8 bytes, little endian) and then its JSON."""
    with open(path, 'rb') as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b'{' and int.from_bytes(head[:8], 'little') < osp.getsize(path)


def _read_safetensors(path: str) -> dict:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework='pt', device='cpu') as handle:
            ckpt: dict[str, Any] = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(_unreadable(path, 'checkpoint', err)) from None
    if SAFETENSORS_META_KEY in metadata:
        ckpt['meta'] = json.loads(metadata[SAFETENSORS_META_KEY])
    return ckpt


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


def atomic_save(obj: Any, path: str) -> None:
    """torch.save through staged_file: readers never see half a file, and it gets the usual file mode."""
    with staged_file(path) as tmp:
        torch.save(obj, tmp)


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
    """Write our checkpoint format atomically, with tensors on the CPU.

    A `.safetensors` path gets one set of weights (the EMA ones when given) and the meta as JSON metadata.
    """
    if path.lower().endswith('.safetensors'):
        save_safetensors(path, params_ema if params_ema is not None else params, meta)
        return
    ckpt: dict[str, Any] = {'params': {k: v.detach().cpu() for k, v in params.items()}}
    if params_ema is not None:
        ckpt['params_ema'] = {k: v.detach().cpu() for k, v in params_ema.items()}
    ckpt['meta'] = _plain(dict(meta))
    atomic_save(ckpt, path)


def save_safetensors(path: str, params: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """The ecosystem's safe format: tensors plus our meta (type and arguments) as JSON metadata."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in params.items()}
    payload = save(tensors, metadata={SAFETENSORS_META_KEY: json.dumps(_plain(dict(meta)))})
    with staged_file(path) as tmp, open(tmp, 'wb') as handle:
        handle.write(payload)
