"""The base of every network here: it records its constructor arguments and owns its deploy forms.

The timm convention (`reparameterize_model`): a training network knows how to fold itself. `to_deploy(kind)`
returns the deployable network, built from the pure functions in `core.reparam`; `deploy_forms` declares
which kinds exist, what they are called and what they must reproduce, and the converter registry in
`core.convert` is read from those declarations. Not a `*_arch.py` file, so the registry scan skips it.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from core.errors import UserError
from core.reparam import Conv

ReferenceFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def first_output(output: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The super-resolved image of a network that may also return auxiliary outputs (training forms)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def same_output(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reference for a fold that keeps the output as it is (branches collapsed, nothing else)."""
    return first_output(net(x))


def clamped_output(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reference for an ET form, which also folds the final clamp to [0, 1]."""
    return first_output(net(x)).clamp(0, 1)


class DeployForm(NamedTuple):
    """A kind of deployable form: the registered network `to_deploy` builds, and the function it reproduces."""

    arch: str
    reference: ReferenceFn


def _recording(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap `__init__` so the instance keeps its arguments, defaults filled in (the outermost class wins)."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def init_and_record(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        self.init_args = {name: copy.deepcopy(value) for name, value in list(bound.arguments.items())[1:]}

    return init_and_record


class SRNetwork(nn.Module):
    """Every registered network: `init_args` rebuilds it, `to_deploy(kind)` folds it (training forms only).

    `layout_options` are arguments a deployable form can change without folding anything (SESR's PixelShuffle
    layout); `with_layout(**options)` returns the same function in that layout.
    """

    deploy_forms: ClassVar[dict[str, DeployForm]] = {}
    layout_options: ClassVar[tuple[str, ...]] = ()
    init_args: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if '__init__' in cls.__dict__:
            cls.__init__ = _recording(cls.__init__)

    def to_deploy(self, kind: str) -> nn.Module:
        """The deployable network of `kind` with the same function (see `deploy_forms`)."""
        raise UserError(f"'{registered_name(type(self))}' has no deploy form '{kind}'")

    def with_layout(self, **options: Any) -> nn.Module:
        raise UserError(f"'{registered_name(type(self))}' has no layout options")


def registered_name(cls: type) -> str:
    """The name a class is registered under in basicsr's ARCH_REGISTRY (ECBSR is `ECBSR_mobilesr`)."""
    return next((name for name, obj in ARCH_REGISTRY if obj is cls), cls.__name__)


def conv_params(conv: nn.Conv2d) -> Conv:
    return conv.weight.detach(), conv.bias.detach()


@torch.no_grad()
def load_convs(convs: Sequence[nn.Conv2d], params: Sequence[Conv]) -> None:
    """Copy folded (weight, bias) pairs into a deploy form's convs, in order; the counts must agree."""
    for conv, (weight, bias) in zip(convs, params, strict=True):
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)


def built_like(cls: type[nn.Module], like: torch.Tensor, **args: Any) -> nn.Module:
    """`cls(**args)` in the dtype and on the device of `like` (folds run in float64)."""
    return cls(**args).to(dtype=like.dtype, device=like.device).eval()
