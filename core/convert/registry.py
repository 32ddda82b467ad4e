"""The converter registry: source architecture (and target kind) → its fold, read from the networks themselves.

Each training network declares `deploy_forms` (kind → target architecture and the reference function the
target must reproduce) and implements `to_deploy(kind)` (core.archs.network). Nothing is registered by hand,
so no family can be left without its converter by a forgotten import.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from core.archs.network import ReferenceFn, SRNetwork
from core.errors import UserError


@dataclass(frozen=True)
class Converter:
    source: str
    kind: str
    target: str
    reference: ReferenceFn
    options: tuple[str, ...]  # keyword arguments of the source's to_deploy beyond `kind`

    def convert(self, net: nn.Module, **options: object) -> nn.Module:
        return net.to_deploy(self.kind, **options)


def _network_classes() -> dict[str, type[SRNetwork]]:
    return {name: obj for name, obj in ARCH_REGISTRY if isinstance(obj, type) and issubclass(obj, SRNetwork)}


def converters() -> dict[tuple[str, str], Converter]:
    """Every (source, kind) fold the registered networks declare."""
    found = {}
    for name, cls in _network_classes().items():
        options = tuple(list(inspect.signature(cls.to_deploy).parameters)[2:])  # after self and kind
        for kind, form in cls.deploy_forms.items():
            found[(name, kind)] = Converter(name, kind, form.arch, form.reference, options)
    return found


def deploy_targets() -> set[str]:
    """Architectures that are some fold's output."""
    return {converter.target for converter in converters().values()}


def is_training_form(arch: str) -> bool:
    """A network with a fold that is not itself some fold's output (ECBSRT is deployable as it is)."""
    return arch not in deploy_targets() and any(source == arch for source, _ in converters())


def layout_options(arch: str) -> tuple[str, ...]:
    cls = _network_classes().get(arch)
    return () if cls is None else cls.layout_options


def _flags(options: tuple[str, ...]) -> str:
    return ' or '.join(f"--{name.replace('_', '-')} or --no-{name.replace('_', '-')}" for name in options)


def get_converter(source: str, kind: str | None = None) -> Converter:
    """The converter for `source` → `kind` (default: 'et' where it exists), or a UserError naming what exists."""
    table = converters()
    kinds = sorted(k for s, k in table if s == source)
    if kind is None and kinds:
        kind = 'et' if 'et' in kinds else kinds[0]
    if (source, kind) in table:
        return table[(source, kind)]
    if kinds:
        raise UserError(f"'{source}' converts to {' or '.join(kinds)}, not '{kind}'; pass --to {kinds[0]}")
    if options := layout_options(source):
        raise UserError(f"'{source}' is already a deployable form; only {_flags(options)} (its layout) can change it")
    if source in deploy_targets():
        raise UserError(f"'{source}' is already a deployable form (a converter's output); there is nothing to fold")
    known = ', '.join(f'{s} -> {k}' for s, k in sorted(table)) or 'none'
    raise UserError(f"'{source}' has no converter (registered conversions: {known}); it is evaluated as it is")
