"""TFLite export with litert-torch: fp32, and full int8 through torchao's PT2E flow with litert's quantizer.

Int8 here means every CONV_2D runs on int8 tensors with per-channel symmetric weights. Two things litert-torch
does not do by itself, done here:
- it keeps float convs unless the quantizer is also passed as `QuantConfig` (then weights would be
  dequantized at run time, slower than fp32);
- the input and output observers are pinned to [0, 1] (scale 1/255, zero point −128), so the int8 edges hold
  pixel values exactly: q = u8 − 128. A histogram observer would pick a scale near, but not at, 1/255.
The model's scale and receptive-field radius are stored in the file's metadata (`mobile_sr`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.deploy.int8_grid import qparams_for_range, range_for_activation, saturating_activation
from core.deploy.onnx_export import NetworkOutput
from core.deploy.optional import require
from core.errors import UserError
from core.reparam.clamp import is_unit_clip

META_NAME = 'mobile_sr'
SHAPE_ONLY_OPS = {'pixel_shuffle', 'alias', 'slice', 'view', 'reshape', 'permute', 'clone', 'contiguous'}


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


def litert_quantizer():
    """litert's own quantizer, per-channel symmetric int8 (it cannot prepare QAT graphs: core.deploy.qat)."""
    quantize = require('litert_torch.quantize.pt2e_quantizer', 'litert-torch')
    config = quantize.get_symmetric_quantization_config(is_per_channel=True)
    return quantize.PT2EQuantizer().set_global(config)


def _observer_of(node) -> str | None:
    return node.target if node.op == 'call_module' and 'activation_post_process' in str(node.target) else None


def edge_observers(graph_module) -> tuple[list[str], list[str]]:
    """Names of the observers right after the inputs and right before the outputs (through shape-only ops)."""
    inputs, outputs = [], []
    for node in graph_module.graph.nodes:
        if node.op == 'placeholder':
            inputs += [name for user in node.users if (name := _observer_of(user))]
        if node.op == 'output':
            stack = list(node.all_input_nodes)
            while stack:
                current = stack.pop()
                if name := _observer_of(current):
                    outputs.append(name)
                elif current.op == 'call_function' and current.target.__name__.split('.')[0] in SHAPE_ONLY_OPS:
                    stack.extend(current.all_input_nodes[:1])
    return inputs, outputs


def pin_pixel_range(graph_module, names: Sequence[str]) -> None:
    """Replace these observers by fixed qparams for [0, 1] in int8: scale 1/255, zero point −128."""
    observers = require('torchao.quantization.pt2e', 'torchao')
    for name in names:
        setattr(graph_module, name, observers.FixedQParamsObserver(
            scale=1.0 / 255, zero_point=-128, dtype=torch.int8, quant_min=-128, quant_max=127))


def _tensor(graph_module, node) -> torch.Tensor | None:
    """The constant a node stands for: a get_attr, or a get_attr seen through its weight observer."""
    if node is None:
        return None
    if node.op == 'call_module' and _observer_of(node):
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
        if weight is not None and is_unit_clip(weight, bias) and (name := _observer_of(source)):
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
        name = _observer_of(node)
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


def quantize_pt2e(net: nn.Module, example: torch.Tensor, calibration: Sequence[np.ndarray]):
    """Post-training static int8: capture, annotate with litert's quantizer, calibrate, pin edges, convert."""
    pt2e = require('torchao.quantization.pt2e.quantize_pt2e', 'torchao')
    quantizer = litert_quantizer()
    graph = torch.export.export(NetworkOutput(net).eval(), (example,)).module()
    prepared = pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for patch in calibration:
            prepared(torch.from_numpy(patch))
    fit_ranges_to_activations(prepared)
    inputs, outputs = edge_observers(prepared)
    pin_pixel_range(prepared, inputs + outputs + unit_clip_input_observers(prepared))
    return pt2e.convert_pt2e(prepared, fold_quantize=False), quantizer


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
