"""ONNX Runtime static int8 (QDQ, per-channel weights): the second int8 path, for ORT-based deployments."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from core.deploy.optional import require


def quantize_onnx_static(float_path: str, output: str, calibration: Sequence[np.ndarray],
                         reduce_range: bool = False) -> None:
    """Quantize a float ONNX file (float NCHW input) with calibration patches into `output`.

    `reduce_range` uses 7-bit weights, which avoids int16 overflow on CPUs without VNNI at a small cost in accuracy.
    """
    quantization = require('onnxruntime.quantization', 'onnxruntime')
    input_name = require('onnx', 'onnx').load(float_path, load_external_data=False).graph.input[0].name

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
                                     weight_type=quantization.QuantType.QInt8)
    finally:
        logger.setLevel(level)
