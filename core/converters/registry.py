"""The converter registry: source architecture (and target kind) → a function that folds a network.

A converter takes a built source network and returns the equivalent target network. Each family
registers its converters next to a detector that recognises its checkpoints from keys and shapes, and
a reference: the function of the source network that the target must reproduce (e.g. clamped output).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from core.errors import UserError

ConvertFn = Callable[..., tuple[str, dict, nn.Module]]  # (source_net, **options)
DetectFn = Callable[[Mapping[str, torch.Tensor]], 'tuple[str, dict] | None']
ReferenceFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Converter:
    source: str
    kind: str
    convert: ConvertFn
    reference: ReferenceFn


CONVERTERS: dict[tuple[str, str], Converter] = {}
DETECTORS: list[DetectFn] = []
TARGETS: set[str] = set()  # architectures that are some converter's output


def register_converter(source: str, kind: str, reference: ReferenceFn, target: str) -> Callable[[ConvertFn], ConvertFn]:
    """Register `fn(source_net) -> (target_type, target_args, target_net)` for `source` → `kind` (giving `target`)."""

    def deco(fn: ConvertFn) -> ConvertFn:
        TARGETS.add(target)
        key = (source, kind)
        if key in CONVERTERS:
            raise KeyError(f'a converter from {source} to {kind} is already registered')
        CONVERTERS[key] = Converter(source, kind, fn, reference)
        return fn

    return deco


def register_detector(fn: DetectFn) -> DetectFn:
    """Register `fn(state_dict) -> (arch_type, arch_args) | None` for recognising raw checkpoints."""
    DETECTORS.append(fn)
    return fn


def kinds_for(source: str) -> list[str]:
    return sorted(kind for s, kind in CONVERTERS if s == source)


def get_converter(source: str, kind: str | None = None) -> Converter:
    """The converter for `source` → `kind` (default: 'et' where it exists), or a UserError naming what exists."""
    kinds = kinds_for(source)
    if kind is None and kinds:
        kind = 'et' if 'et' in kinds else kinds[0]
    if (source, kind) in CONVERTERS:
        return CONVERTERS[(source, kind)]
    if kinds:
        raise UserError(f"'{source}' converts to {' or '.join(kinds)}, not '{kind}'; pass --to {kinds[0]}")
    if source in TARGETS:
        raise UserError(f"'{source}' is already a deployable form (a converter's output); there is nothing to fold")
    known = ', '.join(f'{s} -> {k}' for s, k in sorted(CONVERTERS)) or 'none'
    raise UserError(f"'{source}' has no converter (registered conversions: {known}); it is evaluated as it is")


def detect_architecture(state: Mapping[str, torch.Tensor]) -> tuple[str, dict]:
    """Recognise a raw state_dict's architecture and arguments from its keys and shapes."""
    for detect in DETECTORS:
        found = detect(state)
        if found is not None:
            return found
    first = next(iter(state), '<empty>')
    raise UserError(f"cannot tell which architecture this checkpoint is (first key '{first}'); "
                    'pass the training YAML with -opt so its network_g is used')
