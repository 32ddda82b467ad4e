"""ONNX Runtime static int8 (QDQ, per-channel weights): the second int8 path, for ORT-based deployments."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from core.deploy.int8_grid import range_for_activation, saturating_activation
from core.deploy.optional import require
from core.reparam.clamp import is_unit_clip

# Ranges cover this percentile of each activation tensor: measured on the official ETDS x2 (Set5, calibrated on
# Set14), it lost 0.25 dB where min-max, ORT's default, lost 0.45 dB and entropy 0.45 dB.
CALIBRATION_PERCENTILE = 99.999


def unit_clip_inputs(model) -> list[str]:
    """Inputs of the 1×1 Conv nodes of weight −I and bias 1 (a folded clamp: v = ReLU(1 − u))."""
    numpy_helper = require('onnx.numpy_helper', 'onnx')
    constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.op_type != 'Conv' or len(node.input) < 3:
            continue
        weight, bias = constants.get(node.input[1]), constants.get(node.input[2])
        if weight is not None and bias is not None and is_unit_clip(torch.from_numpy(weight), torch.from_numpy(bias)):
            names.append(node.input[0])
    return names


SATURATING = {'Tanh': 'tanh', 'Sigmoid': 'sigmoid'}
HISTOGRAM_BINS = 2048  # as torchao's histogram observer, whose ranges LiteRT's path fits the same way


def saturating_input_ranges(model, calibration: Sequence[np.ndarray]) -> dict[str, tuple[float, float]]:
    """Ranges for the inputs of Tanh, Sigmoid and PRelu nodes, chosen by the error after the activation
    (`core.deploy.int8_grid.range_for_activation`): a percentile of ESPCN's ±275 pre-tanh tensor leaves three
    levels where tanh is not flat. The float model runs once with those tensors as extra outputs."""
    onnx, ort = require('onnx', 'onnx'), require('onnxruntime', 'onnxruntime')
    numpy_helper = require('onnx.numpy_helper', 'onnx')
    constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    functions = {}
    for node in model.graph.node:
        if node.op_type in SATURATING:
            functions[node.input[0]] = saturating_activation(SATURATING[node.op_type])
        elif node.op_type == 'PRelu' and node.input[1] in constants:
            functions[node.input[0]] = saturating_activation('prelu', torch.from_numpy(constants[node.input[1]]))
    if not functions:
        return {}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in functions)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=['CPUExecutionProvider'])
    input_name, names = model.graph.input[0].name, list(functions)
    values = {name: [] for name in names}
    for patch in calibration:
        for name, value in zip(names, session.run(names, {input_name: patch}), strict=True):
            values[name].append(torch.from_numpy(value).flatten())
    ranges = {}
    for name, parts in values.items():
        tensor = torch.cat(parts).double()
        low, high = float(tensor.min()), float(tensor.max())
        if high > low:
            histogram = torch.histc(tensor, bins=HISTOGRAM_BINS, min=low, max=high)
            ranges[name] = range_for_activation(histogram, low, high, functions[name])
    return ranges


def quantize_onnx_static(float_path: str, output: str, calibration: Sequence[np.ndarray],
                         reduce_range: bool = False) -> None:
    """Quantize a float ONNX file (float NCHW input) with calibration patches into `output`.

    `reduce_range` uses 7-bit weights, which avoids int16 overflow on CPUs without VNNI at a small cost in accuracy.
    """
    quantization = require('onnxruntime.quantization', 'onnxruntime')
    onnx = require('onnx', 'onnx')
    model = onnx.load(float_path)
    input_name = model.graph.input[0].name
    # As in the LiteRT path (core.deploy.tflite_export.unit_clip_input_observers): a folded clamp's u is
    # quantized on [0, 1], since the clamp discards what lies above.
    overrides = {name: [{'rmin': np.float32(0), 'rmax': np.float32(1)}] for name in unit_clip_inputs(model)}
    overrides |= {name: [{'rmin': np.float32(low), 'rmax': np.float32(high)}]
                  for name, (low, high) in saturating_input_ranges(model, calibration).items()}

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
                                     calibrate_method=quantization.CalibrationMethod.Percentile,
                                     extra_options={'CalibPercentile': CALIBRATION_PERCENTILE,
                                                    **({'TensorQuantOverrides': overrides} if overrides else {})})
    finally:
        logger.setLevel(level)
