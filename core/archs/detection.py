"""Recognising raw checkpoints (official state_dicts with no meta) by their keys, then reading sizes from shapes.

Each family declares its layouts next to its arch with `@raw_layout(arch, required=..., absent=...)` on a
function that reads the constructor arguments from the tensors (spandrel's convention). The order in which
layouts are tried is `DETECTION_ORDER`, here and nowhere else. Not a `*_arch.py` file, so the scan skips it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from core.archs.shared import plain_last_width
from core.errors import UserError

State = Mapping[str, torch.Tensor]
ReadArgs = Callable[[State], 'dict | None']

# Tried top to bottom; the first layout whose keys match and whose shapes read wins, so a layout comes before
# any layout whose keys are a subset of its own. A tuple holds layouts the weights cannot tell apart: a
# checkpoint matching more than one of them is refused with a request for -opt rather than guessed.
DETECTION_ORDER: tuple[str | tuple[str, ...], ...] = (
    'ETDSAblationAdvancedResidual',  # every ETDS key, plus advanced_residual_convs
    'ETDS',
    'ETDSAblationResidual',  # no cross connections; with num_block 0 it is the same network as ETDS
    'ETDSForInference',
    # Same keys and shapes; ETDSOnlyET adds the repeated input before PixelShuffle and Plain does not, so a
    # guess would evaluate the wrong function without any error.
    ('Plain', 'ETDSOnlyET'),
    'ECBSR_mobilesr',
    'ECBSRET',  # ECBSRT's keys plus the 1×1 clip conv: read by that kernel's size before ECBSRT is tried
    'ECBSRT',
    'ABPN_ET',  # ABPN's keys plus the 1×1 clip conv
    'ABPN',
    'SESR',
    'SESRInference',
    'ESPCN',
    'FSRCNN',
    'VDSR',
)


@dataclass(frozen=True)
class RawLayout:
    arch: str
    required: tuple[str, ...]  # keys that must all be present
    absent: tuple[str, ...]  # keys that must all be missing
    read_args: ReadArgs  # the constructor arguments from shapes; None when the shapes do not fit

    def matches(self, state: State) -> bool:
        return all(k in state for k in self.required) and not any(k in state for k in self.absent)


RAW_LAYOUTS: dict[str, RawLayout] = {}


def ordered_archs() -> list[str]:
    return [arch for entry in DETECTION_ORDER for arch in ((entry,) if isinstance(entry, str) else entry)]


def raw_layout(arch: str, required: tuple[str, ...], absent: tuple[str, ...] = ()) -> Callable[[ReadArgs], ReadArgs]:
    """Declare how a raw `arch` checkpoint is recognised; the decorated function reads its arguments."""
    if arch not in ordered_archs():
        raise KeyError(f"add '{arch}' to DETECTION_ORDER in {__name__} so its raw checkpoints are tried")

    def deco(read_args: ReadArgs) -> ReadArgs:
        if arch in RAW_LAYOUTS:
            raise KeyError(f'a raw layout for {arch} is already declared')
        RAW_LAYOUTS[arch] = RawLayout(arch, required, absent, read_args)
        return read_args

    return deco


def count_indexed(state: State, pattern: str) -> int:
    """How many layers a repeated key has: `count_indexed(state, 'backbone_convs.{}.weight')`."""
    regex = re.compile(re.escape(pattern).replace(r'\{\}', r'\d+'))
    return sum(1 for key in state if regex.fullmatch(key))


def last_index(state: State, pattern: str) -> int:
    """The largest k for which `pattern.format(k)` is a key (-1 when there is none)."""
    regex = re.compile(re.escape(pattern).replace(r'\{\}', r'(\d+)'))
    return max((int(m.group(1)) for key in state if (m := regex.fullmatch(key))), default=-1)


def scale_from_channels(channels: int, num_in_ch: int) -> int | None:
    """s where channels = num_in_ch·s², or None when the width is not of that form."""
    scale = math.isqrt(channels // num_in_ch)
    return scale if scale * scale * num_in_ch == channels else None


def scale_from_plain_width(channels: int, num_in_ch: int) -> int | None:
    """s where channels = plain_last_width(num_in_ch, s) (an ET form's padded output width), or None."""
    return next((s for s in range(1, 9) if plain_last_width(num_in_ch, s) == channels), None)


def _read(arch: str, state: State) -> dict | None:
    layout = RAW_LAYOUTS.get(arch)
    return layout.read_args(state) if layout is not None and layout.matches(state) else None


def read_as(state: State, arch: str) -> tuple[str, dict]:
    """A raw state_dict read as the architecture the user names (`--arch`): the answer where weights alone cannot
    tell, as for Plain and ETDSOnlyET."""
    layout = RAW_LAYOUTS.get(arch)
    if layout is None:
        raise UserError(f"--arch {arch}: no raw layout is known for '{arch}'; choose one of "
                        f"{', '.join(ordered_archs())}, or pass -opt with a YAML whose network_g describes it")
    args = layout.read_args(state) if layout.matches(state) else None
    if args is None:
        raise UserError(f"--arch {arch}: the weights do not have {arch}'s keys and shapes; check the file or "
                        'the --arch name')
    return arch, args


def detect_architecture(state: State, arch: str | None = None) -> tuple[str, dict]:
    """A raw state_dict's architecture and the arguments its shapes give, tried in `DETECTION_ORDER` (or read as
    `arch` when the user names it)."""
    if arch is not None:
        return read_as(state, arch)
    for entry in DETECTION_ORDER:
        group = (entry,) if isinstance(entry, str) else entry
        found = [(arch, args) for arch in group if (args := _read(arch, state)) is not None]
        if len(found) > 1:
            names = ' and '.join(arch for arch, _ in found)
            raise UserError(f'this checkpoint fits {names} alike (same weights, different networks); pass '
                            f'--arch {found[0][0]} (or another of them), or -opt with a YAML whose network_g names it')
        if found:
            return found[0]
    first = next(iter(state), '<empty>')
    raise UserError(f"cannot tell which architecture this checkpoint is (first key '{first}'); "
                    'pass the training YAML with -opt so its network_g is used')
