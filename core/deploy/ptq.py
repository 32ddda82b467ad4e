"""Post-training int8: the float network made ready for the runtime's quantizer, and what each step did.

Two steps, each optional so their effect can be measured (`scripts/export.py --no-equalize`, `--rounding`):
1. exact transformations (`core.deploy.activation_groups`, `core.deploy.equalization`), the fp32 function
   unchanged (checked in float64): a conv before tanh or sigmoid runs as channel groups of similar range, each
   with its own int8 scale, where that cuts its int8 error fourfold;
   every conv → PReLU → conv runs as ReLU on the channels and their negated copies, so no conv output is quantized
   before its activation (and ReLU fuses into the conv); then channels are rescaled across the ReLUs so the
   per-tensor activation scales starve no channel;
2. round (`core.deploy.rounding`): give every conv weight an int8 value chosen by GPTQ on the calibration
   patches, with its bias corrected; the runtime's own rounding then keeps these values.
The scales are chosen with a histogram observer on activations, as LiteRT's quantizer calibrates them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from core.deploy.activation_groups import GROUPS, group_saturating_channels
from core.deploy.equalization import PairChoice, equalize, split_prelus
from core.deploy.int8_grid import activation_observer
from core.deploy.rounding import RoundedLayer, round_weights

WORKING_SIZE = 128  # calibration patches are centre-cropped to this for choosing scales and rounding: the
# statistics are there at this size, and 16 full 360×640 patches would take minutes (the observers see them all)


def working_patches(calibration: Sequence[np.ndarray], size: int = WORKING_SIZE) -> list[np.ndarray]:
    """Centre crops of at most size×size."""
    patches = []
    for patch in calibration:
        height, width = patch.shape[-2:]
        top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
        patches.append(np.ascontiguousarray(patch[..., top:top + size, left:left + size]))
    return patches


@dataclass
class Int8Preparation:
    net: nn.Module
    prelus_split: int = 0
    convs_grouped: int = 0  # convs before tanh/sigmoid split into channel groups
    pairs: list[PairChoice] = field(default_factory=list)
    layers: list[RoundedLayer] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the user: what was rescaled and rounded."""
        parts = []
        if self.convs_grouped:
            parts.append(f'{self.convs_grouped} convs before tanh/sigmoid run as {GROUPS} channel groups')
        if self.prelus_split:
            parts.append(f'{self.prelus_split} PReLU layers run as ReLU on split channels')
        if self.pairs:
            moved = sum(choice.method != 'none' for choice in self.pairs)
            parts.append(f'{moved} of {len(self.pairs)} conv pairs rescaled (fp32 unchanged)')
        if self.layers:
            nearest = sum(layer.nearest_error for layer in self.layers)
            rounded = sum(layer.rounded_error for layer in self.layers)
            parts.append(f'{len(self.layers)} layers rounded by GPTQ (layer output error {rounded / nearest:.2f}x '
                         'of nearest rounding)')
        return '; '.join(parts) or 'no int8 preparation (nearest rounding, no rescaling)'


def prepare_for_int8(net: nn.Module, calibration: Sequence[np.ndarray], equalized: bool = True,
                     rounding: str = 'gptq') -> Int8Preparation:
    """The network the int8 exporter should quantize: PReLUs split, rescaled and GPTQ-rounded unless switched off."""
    observer = activation_observer()
    calibration = working_patches(calibration)
    prepared = Int8Preparation(net.float().eval())
    if equalized:
        prepared.net, prepared.convs_grouped = group_saturating_channels(prepared.net, calibration)
        prepared.net, prepared.prelus_split = split_prelus(prepared.net)
        # Weights are rounded by GPTQ afterwards, which cancels most of their error: choose the scales by the
        # activations' error alone then (with nearest rounding, by both).
        prepared.net, prepared.pairs = equalize(prepared.net, calibration, observer, weights=rounding == 'nearest')
    if rounding == 'gptq':
        prepared.net, prepared.layers = round_weights(prepared.net, calibration, observer, patches=len(calibration))
    return prepared
