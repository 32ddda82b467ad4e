"""OpenVINO IR export (.xml graph + .bin weights), read from the toolkit's own ONNX export.

Through ONNX rather than `openvino.convert_model`: the graph is the one the ONNX check already verified (dynamic
height and width), and OpenVINO's model converter starts a telemetry process (a fork, in a process that may hold
JAX's threads) on every call; its ONNX reader does not.
"""

from __future__ import annotations

import json
import tempfile
from os import path as osp

from torch import nn

from core.deploy.file_metadata import META_KEY
from core.deploy.native_logs import native_output_to_log
from core.deploy.onnx_export import export_onnx
from core.deploy.optional import require


def export_openvino(net: nn.Module, xml_path: str, num_in_ch: int, meta: dict) -> None:
    """fp32 weights (OpenVINO compresses them to fp16 by default); meta kept in the IR's rt_info."""
    ov = require('openvino', 'openvino')
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = osp.join(folder, 'model.onnx')
        export_onnx(net, onnx_path, num_in_ch, meta)
        with native_output_to_log('openvino'):
            model = ov.Core().read_model(onnx_path)
            model.set_rt_info(json.dumps(meta), [META_KEY])
            ov.save_model(model, xml_path, compress_to_fp16=False)
