"""TFLite export with litert-torch: fp32, and full int8 through torchao's PT2E flow with litert's quantizer.

Int8 here means every CONV_2D runs on int8 tensors with per-channel symmetric weights. litert-torch keeps float
convs unless the quantizer is also passed as `QuantConfig` (then weights would be dequantized at run time, slower
than fp32), so it is passed. The ranges are chosen in `core.deploy.pt2e_calibration` (int8 edges that hold
pixels exactly: q = u8 − 128). The model's scale and receptive-field radius are stored in the file's metadata
(`mobile_sr`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.deploy.optional import require
from core.deploy.output_ranges import RangeChoice
from core.deploy.pt2e_calibration import calibrated_graph
from core.errors import UserError

META_NAME = 'mobile_sr'


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """litert-torch prints a progress tree and root-logger warnings for every conversion; keep them out of the
    user's terminal (a failure still raises)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def quantize_pt2e(net: nn.Module, calibration: Sequence[np.ndarray], narrow_ranges: bool = False
                  ) -> tuple[torch.fx.GraphModule, object, list[RangeChoice]]:
    """Post-training static int8 (`core.deploy.pt2e_calibration`), converted, at the calibration patches' size."""
    pt2e = require('torchao.quantization.pt2e.quantize_pt2e', 'torchao')
    prepared, quantizer, choices = calibrated_graph(net, calibration, narrow_ranges)
    return pt2e.convert_pt2e(prepared, fold_quantize=False), quantizer, choices


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
        flatbuffer = add_metadata(handle.read(), META_NAME, json.dumps(meta).encode())
    with open(path, 'wb') as handle:
        handle.write(flatbuffer)


def _schema():
    return require('ai_edge_litert.schema_py_generated', 'ai-edge-litert')


def add_metadata(flatbuffer: bytes, name: str, data: bytes) -> bytes:
    """A copy of a .tflite flatbuffer with one more metadata entry (the schema's own object API)."""
    schema = _schema()
    flatbuffers = require('flatbuffers', 'flatbuffers')
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(flatbuffer, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(data, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = name, len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b'TFL3')
    return bytes(builder.Output())


def read_metadata(path: str, name: str = META_NAME) -> dict:
    """Our metadata entry of a .tflite file ({} when it has none, e.g. a file from elsewhere)."""
    schema = _schema()
    with open(path, 'rb') as handle:
        model = schema.Model.GetRootAs(handle.read(), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == name:
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return {}


@dataclass(frozen=True)
class OpTypes:
    op: str
    inputs: tuple[str, ...]  # tensor types of the activation and weight inputs
    outputs: tuple[str, ...]


def operator_types(path: str) -> list[OpTypes]:
    """Every operator of a .tflite file with the types of its tensors, read from the flatbuffer."""
    schema = _schema()
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith('_')}
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith('_')}
    with open(path, 'rb') as handle:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(handle.read(), 0))
    graph = model.subgraphs[0]
    ops = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        ins = tuple(type_names[graph.tensors[i].type] for i in op.inputs if i >= 0)
        outs = tuple(type_names[graph.tensors[i].type] for i in op.outputs)
        ops.append(OpTypes(op_names.get(builtin, str(builtin)), ins, outs))
    return ops
