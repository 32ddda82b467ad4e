"""Reading and writing a .tflite flatbuffer with the schema's own object API: our metadata entry, and the tensor
types of every operator (what the int8 checks count)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from core.deploy.file_metadata import META_KEY
from core.deploy.optional import require


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


def read_metadata(path: str, name: str = META_KEY) -> dict:
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
