"""A `network_g` block checked against the registry and the network's constructor, in one line naming the fix."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping

from basicsr.utils.registry import ARCH_REGISTRY

from core.errors import UserError


def require_registered(kind: str, name: object, registry, where: str) -> None:
    if name not in registry:
        known = ', '.join(sorted(registry.keys()))
        raise UserError(f"unknown {kind} type '{name}' in {where}; registered {kind} types: {known}")


def check_network(key: str, network: Mapping) -> None:
    """The network's type must be registered and its options must fit its constructor."""
    require_registered('network', network.get('type'), ARCH_REGISTRY, key)
    _check_arguments(key, network)


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
