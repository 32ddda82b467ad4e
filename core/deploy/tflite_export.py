"""TFLite conversion with litert-torch: fp32, int8 from a PT2E-converted graph, and int8 from a QAT graph.

Int8 here means every CONV_2D runs on int8 tensors with per-channel symmetric weights. litert-torch keeps float
convs unless the quantizer is also passed as `QuantConfig` (then weights would be dequantized at run time, slower
than fp32), so it is passed. The ranges are chosen in `core.deploy.pt2e_calibration` (int8 edges that hold
pixels exactly: q = u8 − 128). The model's scale and receptive-field radius are stored in the file's metadata
(`mobile_sr`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Iterator

import torch
from torch import nn

from core.deploy.file_metadata import META_KEY
from core.deploy.native_logs import native_output_to_log
from core.deploy.optional import require
from core.deploy.pt2e_calibration import litert_quantizer
from core.deploy.tflite_flatbuffer import add_metadata
from core.errors import UserError


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """litert-torch prints a progress tree, root-logger warnings and (from C++) TensorFlow's notices for every
    conversion; they go to the log, not the user's terminal (a failure still raises)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with native_output_to_log('litert-torch'):
            yield
    finally:
        root.setLevel(level)


def convert_to_tflite(module: nn.Module, example: torch.Tensor, path: str, meta: dict, quantizer=None) -> None:
    """Convert with litert-torch (`module` in eval mode, or a PT2E-converted graph) and add our metadata."""
    litert_torch = require('litert_torch', 'litert-torch')
    kwargs = {}
    if quantizer is not None:
        kwargs['quant_config'] = require('litert_torch.quantize.quant_config', 'litert-torch').QuantConfig(
            pt2e_quantizer=quantizer)
    try:
        with quiet():
            litert_torch.convert(module, (example,), **kwargs).export(path)
    except Exception as err:  # the converter raises many types; each becomes one line
        first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise UserError(f'{meta.get("arch")} cannot be converted to TFLite: {first[:300]}') from None
    with open(path, 'rb') as handle:
        flatbuffer = add_metadata(handle.read(), META_KEY, json.dumps(meta).encode())
    with open(path, 'wb') as handle:
        handle.write(flatbuffer)


def export_qat_tflite(graph: torch.fx.GraphModule, example: torch.Tensor, path: str, meta: dict) -> None:
    """Convert the trained fake-quant graph to a real int8 TFLite file; no calibration: QAT learned the ranges."""
    quantize = require('torchao.quantization.pt2e.quantize_pt2e', 'torchao')
    frozen = copy.deepcopy(graph)
    frozen.eval()
    converted = quantize.convert_pt2e(frozen, fold_quantize=False)
    convert_to_tflite(converted, example, path, meta, quantizer=litert_quantizer())
