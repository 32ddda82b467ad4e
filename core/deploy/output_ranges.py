"""Activation ranges chosen by the error they cause at the network's output, not in their own tensor.

A histogram observer gives each tensor the range with the least rounding-plus-clipping error in that tensor.
Downstream, errors weigh differently: the largest activations tend to drive pixels that the output clamp cuts
anyway, so clipping them costs less than the coarser step that keeps them costs everywhere else. The histograms
also follow the rare extremes of a calibration draw. On the official ETDS x2 (Set5, the LiteRT graph simulated in
PyTorch), draws of 16 calibration patches lost 0.149 … 0.206 dB with histogram ranges; with each range then scaled
by the factor that minimises the calibration output error, the two worst draws lost 0.175 and 0.165 dB and the
best were unchanged. Through the runtimes: ESPCN x2 from 0.240 to 0.208 dB (LiteRT), ETDS x2 in ORT from 0.207 to
0.174; ABPN_ET x2 lost 0.008 dB more (0.095 to 0.103, LiteRT).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.deploy.int8_grid import fake_quantize, on_grid, qparams_for_range, range_of_qparams
from core.deploy.optional import require
from core.deploy.pt2e_observers import activation_observers, observer_qparams, weight_observers

RANGE_FACTORS = (0.7, 0.8, 0.9, 1.1, 1.25)  # tried on each calibrated range; the search keeps the best


@dataclass(frozen=True)
class RangeChoice:
    observer: str
    before: tuple[float, float]
    after: tuple[float, float]


class _FakeQuant(nn.Module):
    """Stands in for an activation observer: the tensor as the runtime holds it in int8."""

    def __init__(self, qparams: tuple[float, int]) -> None:
        super().__init__()
        self.qparams = qparams

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quantize(x, self.qparams)


class _WeightGrid(nn.Module):
    """Stands in for a weight observer: the weight on its per-channel int8 grid."""

    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return on_grid(weight, self.axis)


def narrow_ranges_by_output_error(graph: torch.fx.GraphModule, reference: nn.Module,
                                  calibration: Sequence[np.ndarray]) -> list[RangeChoice]:
    """Rescale each calibrated activation range of a PT2E-prepared `graph` by the factor (`RANGE_FACTORS`, or 1)
    that minimises the squared error of the simulated int8 output against `reference` on the calibration
    patches, one tensor at a time in graph order; fixed ranges (pinned edges, fitted pre-activation ranges) stay.
    The chosen ranges replace the observers as fixed qparams. Returns every range it looked at."""
    pt2e = require('torchao.quantization.pt2e', 'torchao')
    activations = [name for name, _ in activation_observers(graph)]
    weights = weight_observers(graph)
    qparams = {name: observer_qparams(getattr(graph, name)) for name in activations}
    free = [name for name in activations if not isinstance(getattr(graph, name), pt2e.FixedQParamsObserver)]
    simulated = copy.deepcopy(graph)
    for name in activations:
        setattr(simulated, name, _FakeQuant(qparams[name]))
    for name in weights:
        setattr(simulated, name, _WeightGrid(getattr(graph, name).ch_axis))
    inputs = [torch.from_numpy(patch) for patch in calibration]
    with torch.no_grad():
        targets = [reference(x) for x in inputs]

    def output_error() -> float:
        with torch.no_grad():
            return sum(float(((simulated(x) - target) ** 2).sum()) for x, target in zip(inputs, targets, strict=True))

    choices, current_error = [], output_error()
    for name in free:
        low, high = range_of_qparams(*qparams[name])
        best, best_error = qparams[name], current_error
        for factor in RANGE_FACTORS:
            candidate = qparams_for_range(low * factor, high * factor)
            getattr(simulated, name).qparams = candidate
            error = output_error()
            if error < best_error:
                best, best_error = candidate, error
        getattr(simulated, name).qparams = qparams[name] = best
        current_error = best_error
        choices.append(RangeChoice(name, (low, high), range_of_qparams(*best)))
        setattr(graph, name, pt2e.FixedQParamsObserver(scale=best[0], zero_point=best[1], dtype=torch.int8,
                                                       quant_min=-128, quant_max=127))
    return choices


def ranges_summary(choices: Sequence[RangeChoice]) -> str:
    """One line for the user: how many calibrated ranges the output error moved ('' when none were looked at)."""
    if not choices:
        return ''
    moved = sum(choice.after != choice.before for choice in choices)
    return f'{moved} of {len(choices)} activation ranges rescaled by the output error'
