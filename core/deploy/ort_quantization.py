"""ONNX Runtime static int8 (QDQ, per-channel weights): the second int8 path, for ORT-based deployments.

Every activation range is chosen here and handed to `quantize_static` as a tensor override, the same way the
LiteRT path and GPTQ rounding choose them (a histogram observer), so the weights were rounded for the grids
ONNX Runtime then uses. Measured on the official ETDS x2 (Set5): ORT's 99.999th-percentile calibration lost
0.211 dB where this loses 0.207 (ECBSR_ET x2: 0.161 and 0.124); ORT's min–max lost 0.45 dB before GPTQ.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from core.deploy.int8_grid import (
    activation_observer,
    fitted_range,
    observed_qparams,
    range_of_qparams,
    saturating_activation,
)
from core.deploy.optional import require
from core.reparam.clamp import is_unit_clip


def _constants(model) -> dict[str, np.ndarray]:
    """The graph's initializers as writable arrays (torch.from_numpy warns on read-only ones)."""
    numpy_helper = require('onnx.numpy_helper', 'onnx')
    return {init.name: numpy_helper.to_array(init).copy() for init in model.graph.initializer}


def unit_clip_inputs(model) -> list[str]:
    """Inputs of the 1×1 Conv nodes of weight −I and bias 1 (a folded clamp: v = ReLU(1 − u))."""
    constants = _constants(model)
    names = []
    for node in model.graph.node:
        if node.op_type != 'Conv' or len(node.input) < 3:
            continue
        weight, bias = constants.get(node.input[1]), constants.get(node.input[2])
        if weight is not None and bias is not None and is_unit_clip(torch.from_numpy(weight), torch.from_numpy(bias)):
            names.append(node.input[0])
    return names


SATURATING = {'Tanh': 'tanh', 'Sigmoid': 'sigmoid'}


def activation_ranges(model, calibration: Sequence[np.ndarray],
                      given: Mapping[str, tuple[float, float]] | None = None) -> dict[str, tuple[float, float]]:
    """The int8 range of every tensor the graph computes, chosen as the LiteRT path and GPTQ rounding choose them
    (`core.deploy.int8_grid.activation_observer`, a histogram), so the weights were rounded for the grids ORT then uses.
    Inputs of Tanh, Sigmoid and PRelu nodes get the range that minimises the error after the activation
    (`core.deploy.int8_grid.range_for_activation`): a percentile of ESPCN's ±275 pre-tanh tensor leaves three
    levels where tanh is not flat. A tensor with a `given` range keeps it, and no histogram is fitted for it. The
    float model runs once with every tensor as an extra output."""
    given = given or {}
    onnx, ort = require('onnx', 'onnx'), require('onnxruntime', 'onnxruntime')
    constants = _constants(model)
    saturating = {}
    for node in model.graph.node:
        if node.op_type in SATURATING:
            saturating[node.input[0]] = saturating_activation(SATURATING[node.op_type])
        elif node.op_type == 'PRelu' and node.input[1] in constants:
            saturating[node.input[0]] = saturating_activation('prelu', torch.from_numpy(constants[node.input[1]]))
    outputs = {output.name for output in model.graph.output}
    names = list(dict.fromkeys(name for node in model.graph.node for name in node.output if name not in outputs))
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=['CPUExecutionProvider'])
    input_name = model.graph.input[0].name
    values = {name: [] for name in names}
    for patch in calibration:
        for name, value in zip(names, session.run(names, {input_name: patch}), strict=True):
            values[name].append(torch.from_numpy(np.asarray(value, dtype=np.float32)).flatten())
    ranges = {}
    for name, parts in values.items():
        tensor = torch.cat(parts)
        if not float(tensor.max()) > float(tensor.min()):
            continue
        if name in given:
            ranges[name] = given[name]
        elif name in saturating:
            ranges[name] = fitted_range(tensor, saturating[name])
        else:
            ranges[name] = range_of_qparams(*observed_qparams(tensor, activation_observer()))
    return ranges


def quantize_onnx_static(float_path: str, output: str, calibration: Sequence[np.ndarray],
                         reduce_range: bool = False, chosen: Mapping[str, tuple[float, float]] | None = None) -> None:
    """Quantize a float ONNX file (float NCHW input) with calibration patches into `output`.

    `chosen` holds ranges chosen elsewhere by tensor name (`core.deploy.pt2e_calibration.observed_ranges`, the
    LiteRT path's); they replace this module's histogram ranges for the tensors of those names (an op the ONNX
    exporter decomposes gets a new name and keeps its histogram range).
    `reduce_range` uses 7-bit weights, which avoids int16 overflow on CPUs without VNNI at a small cost in accuracy.
    """
    quantization = require('onnxruntime.quantization', 'onnxruntime')
    onnx = require('onnx', 'onnx')
    model = onnx.load(float_path)
    input_name = model.graph.input[0].name
    # As in the LiteRT path (core.deploy.pt2e_calibration.unit_clip_input_observers): a folded clamp's u is
    # quantized on [0, 1], since the clamp discards what lies above; a range chosen elsewhere wins over both.
    unit_clips = {name: (0.0, 1.0) for name in unit_clip_inputs(model)}
    given = unit_clips | dict(chosen or {})
    ranges = activation_ranges(model, calibration, given)
    for name in unit_clips:  # a clamp input constant on the calibration patches still gets its range
        ranges.setdefault(name, given[name])
    overrides = {name: [{'rmin': np.float32(low), 'rmax': np.float32(high)}] for name, (low, high) in ranges.items()}

    class Patches(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self) -> dict | None:
            patch = next(self.items, None)
            return None if patch is None else {input_name: patch}

    logger = logging.getLogger()  # the quantizer logs a pre-processing hint as a root warning on every call
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        quantization.quantize_static(float_path, output, Patches(), quant_format=quantization.QuantFormat.QDQ,
                                     per_channel=True, reduce_range=reduce_range,
                                     activation_type=quantization.QuantType.QUInt8,
                                     weight_type=quantization.QuantType.QInt8,
                                     # every tensor has its range in the overrides; ORT's own pass only has to run
                                     calibrate_method=quantization.CalibrationMethod.MinMax,
                                     extra_options={'TensorQuantOverrides': overrides})
    finally:
        logger.setLevel(level)
