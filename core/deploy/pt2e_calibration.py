"""Post-training calibration in torchao's PT2E flow, shared by both int8 paths.

The network is captured, annotated by litert's quantizer (per-channel symmetric int8 weights, per-tensor int8
activations), and calibrated with histogram observers; then the ranges are finished here:
- observers before tanh, sigmoid and PReLU take the range with the least error after the activation;
- the input and output are pinned to pixels (scale 1/255, zero point −128), so `q = u8 − 128` maps them
  exactly (a histogram would pick a scale near, but not at, 1/255), and so is a folded clamp's input;
- optionally every other range is rescaled by the error at the output (`core.deploy.output_ranges`).
LiteRT converts the graph itself (`core.deploy.tflite_export`); ONNX Runtime receives its ranges by tensor name
(`observed_ranges`: torch.export's node names are the ONNX exporter's value names).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from core.deploy.int8_grid import (
    PIXEL_QPARAMS,
    qparams_for_range,
    range_for_activation,
    saturating_activation,
)
from core.deploy.optional import require
from core.deploy.output_ranges import RangeChoice, narrow_ranges_by_output_error
from core.deploy.pt2e_observers import activation_observers, observer_of, observer_range
from core.deploy.wrappers import NetworkOutput
from core.reparam.clamp import is_unit_clip

SHAPE_ONLY_OPS = {'pixel_shuffle', 'alias', 'slice', 'view', 'reshape', 'permute', 'clone', 'contiguous'}


def litert_quantizer():
    """litert's own quantizer, per-channel symmetric int8 (it cannot prepare QAT graphs: core.deploy.qat)."""
    quantize = require('litert_torch.quantize.pt2e_quantizer', 'litert-torch')
    config = quantize.get_symmetric_quantization_config(is_per_channel=True)
    return quantize.PT2EQuantizer().set_global(config)


def edge_observers(graph_module) -> tuple[list[str], list[str]]:
    """Names of the observers right after the inputs and right before the outputs (through shape-only ops)."""
    inputs, outputs = [], []
    for node in graph_module.graph.nodes:
        if node.op == 'placeholder':
            inputs += [name for user in node.users if (name := observer_of(user))]
        if node.op == 'output':
            stack = list(node.all_input_nodes)
            while stack:
                current = stack.pop()
                if name := observer_of(current):
                    outputs.append(name)
                elif current.op == 'call_function' and current.target.__name__.split('.')[0] in SHAPE_ONLY_OPS:
                    stack.extend(current.all_input_nodes[:1])
    return inputs, outputs


def pin_pixel_range(graph_module, names: Sequence[str]) -> None:
    """Replace these observers by fixed qparams for [0, 1] in int8: scale 1/255, zero point −128."""
    observers = require('torchao.quantization.pt2e', 'torchao')
    for name in names:
        setattr(graph_module, name, observers.FixedQParamsObserver(
            scale=PIXEL_QPARAMS[0], zero_point=PIXEL_QPARAMS[1], dtype=torch.int8, quant_min=-128, quant_max=127))


def _tensor(graph_module, node) -> torch.Tensor | None:
    """The constant a node stands for: a get_attr, or a get_attr seen through its weight observer."""
    if node is None:
        return None
    if node.op == 'call_module' and observer_of(node):
        node = node.all_input_nodes[0]
    return functools.reduce(getattr, node.target.split('.'), graph_module) if node.op == 'get_attr' else None


def unit_clip_input_observers(graph_module) -> list[str]:
    """Observers of the input u of a folded clamp's last conv (v = ReLU(1 − u), core.reparam.clamp).

    u ≥ 1 gives v = 0 whatever its value, so u is quantized on [0, 1] like the output: the clip then adds no
    error of its own. A histogram would stretch u's range over values the clamp discards anyway.
    """
    names = []
    for node in graph_module.graph.nodes:
        if node.op != 'call_function' or node.target is not torch.ops.aten.conv2d.default:
            continue
        weight = _tensor(graph_module, node.args[1])
        bias = _tensor(graph_module, node.args[2] if len(node.args) > 2 else None)
        source = node.args[0]
        if weight is not None and is_unit_clip(weight, bias) and (name := observer_of(source)):
            names.append(name)
    return names


_SATURATING = {torch.ops.aten.tanh.default: 'tanh', torch.ops.aten.sigmoid.default: 'sigmoid',
               torch.ops.aten.prelu.default: 'prelu'}


def _activation_after(graph_module, node) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The elementwise function an observer's only user applies (tanh, sigmoid, PReLU at its mean slope)."""
    users = list(node.users)
    if len(users) != 1 or users[0].op != 'call_function':
        return None
    user = users[0]
    kind = _SATURATING.get(user.target)
    slopes = _tensor(graph_module, user.args[1]) if kind == 'prelu' else None
    if kind is None or (kind == 'prelu' and slopes is None):
        return None
    return saturating_activation(kind, slopes)


def fit_ranges_to_activations(graph_module) -> list[str]:
    """Re-range every calibrated observer that feeds tanh, sigmoid or PReLU by the error after it (fixed qparams)."""
    observers = require('torchao.quantization.pt2e', 'torchao')
    fitted = []
    for node in list(graph_module.graph.nodes):
        name = observer_of(node)
        activation = _activation_after(graph_module, node) if name else None
        observer = getattr(graph_module, name) if activation else None
        if observer is None or not hasattr(observer, 'histogram') or float(observer.histogram.sum()) == 0:
            continue
        lo, hi = range_for_activation(observer.histogram, float(observer.min_val), float(observer.max_val),
                                      activation)
        scale, zero_point = qparams_for_range(lo, hi)
        setattr(graph_module, name, observers.FixedQParamsObserver(
            scale=scale, zero_point=zero_point, dtype=torch.int8, quant_min=-128, quant_max=127))
        fitted.append(name)
    return fitted


def calibrated_graph(net: nn.Module, calibration: Sequence[np.ndarray], narrow_ranges: bool = False,
                     quantizer=None) -> tuple[torch.fx.GraphModule, object, list[RangeChoice]]:
    """The PT2E-prepared graph of `net` with every activation range chosen (see the module docstring), its
    quantizer (litert's unless another is given, e.g. ExecuTorch's XNNPACK one), and the ranges the output error
    looked at (none unless `narrow_ranges`)."""
    pt2e = require('torchao.quantization.pt2e.quantize_pt2e', 'torchao')
    quantizer = quantizer or litert_quantizer()
    reference = NetworkOutput(net).eval()
    graph = torch.export.export(reference, (torch.from_numpy(calibration[0]),)).module()
    prepared = pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for patch in calibration:
            prepared(torch.from_numpy(patch))
    fit_ranges_to_activations(prepared)
    inputs, outputs = edge_observers(prepared)
    pin_pixel_range(prepared, inputs + outputs + unit_clip_input_observers(prepared))
    choices = narrow_ranges_by_output_error(prepared, reference, calibration) if narrow_ranges else []
    return prepared, quantizer, choices


def observed_ranges(graph: torch.fx.GraphModule) -> dict[str, tuple[float, float]]:
    """The int8 range of every activation a calibrated graph observes, by the name of the node it observes."""
    return {source.name: observer_range(getattr(graph, name)) for name, source in activation_observers(graph)}


def quantize_pt2e(net: nn.Module, calibration: Sequence[np.ndarray], narrow_ranges: bool = False, quantizer=None,
                  fold_quantize: bool = False) -> tuple[torch.fx.GraphModule, object, list[RangeChoice]]:
    """Post-training static int8 (the calibrated graph above), converted, at the calibration patches' size.
    LiteRT wants the weights' quantize ops kept (`fold_quantize=False`); ExecuTorch wants them folded."""
    pt2e = require('torchao.quantization.pt2e.quantize_pt2e', 'torchao')
    prepared, quantizer, choices = calibrated_graph(net, calibration, narrow_ranges, quantizer)
    return pt2e.convert_pt2e(prepared, fold_quantize=fold_quantize), quantizer, choices
