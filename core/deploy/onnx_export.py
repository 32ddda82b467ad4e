"""ONNX export with torch's dynamo exporter, checked by onnxruntime before the file is kept.

Options a phone integration asks for: a uint8 NHWC graph edge (camera buffers go in and come out as they
are) and the PixelShuffle lowering (DepthToSpace, or Reshape/Transpose for delegates that reject one of them).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings

import torch
from torch import nn

from core.deploy.file_metadata import META_KEY
from core.deploy.optional import require
from core.deploy.wrappers import NetworkOutput, Uint8NHWC
from core.errors import UserError

OPSET = 18


def _pixel_shuffle_as_reshape(x, upscale_factor: int):
    """aten.pixel_shuffle as Reshape → Transpose → Reshape (no DepthToSpace), dynamic height and width."""
    op = require('onnxscript', 'onnxscript').opset18
    shape = op.Shape(x)
    n, c = op.Slice(shape, [0], [1]), op.Slice(shape, [1], [2])
    h, w = op.Slice(shape, [2], [3]), op.Slice(shape, [3], [4])
    s = op.Constant(value_ints=[upscale_factor])
    out_c = op.Div(c, op.Mul(s, s))
    blocks = op.Reshape(x, op.Concat(n, out_c, s, s, h, w, axis=0))
    moved = op.Transpose(blocks, perm=[0, 1, 4, 2, 5, 3])
    return op.Reshape(moved, op.Concat(n, out_c, op.Mul(h, s), op.Mul(w, s), axis=0))


def _export_error(err: Exception, program, arch: str) -> UserError:
    """One line naming the op the exporter could not translate and, when the graph knows it, the layer."""
    text = str(err)
    found = re.search(r"op='([\w.]+)'", text) or re.search(r'target=torch\.ops\.([\w.]+)', text)
    if found is None:
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)
        return UserError(f'{arch} cannot be exported to ONNX: {first[:300]}')
    op = found.group(1).removesuffix('.default')
    short = op.split('.')[-1]
    layer = ''
    for node in program.graph.nodes if program is not None else []:
        if node.op == 'call_function' and short in str(node.target):
            stack = node.meta.get('nn_module_stack') or {}
            path = next(reversed(stack.values()))[0] if stack else ''
            layer = path.removeprefix('L__self__').strip('._').removeprefix('net').strip('._')  # our wrapper
            break
    layer = f'layer {layer}' if layer else f'{arch}.forward'

    return UserError(f"{arch} cannot be exported to ONNX: op '{op}' (in {layer}) has no ONNX translation; "
                     'replace that op in the network, or export its deployable form (converter.py)')


def export_onnx(net: nn.Module, path: str, num_in_ch: int, meta: dict, nhwc_uint8: bool = False,
                pixel_shuffle: str = 'depth-to-space') -> None:
    """One self-contained ONNX file with dynamic height and width (check it with core.deploy.runtime_check)."""
    onnx = require('onnx', 'onnx')
    require('onnxscript', 'onnxscript')
    net = net.float().eval()
    wrapped = Uint8NHWC(net) if nhwc_uint8 else NetworkOutput(net)
    shape = (1, 16, 16, num_in_ch) if nhwc_uint8 else (1, num_in_ch, 16, 16)
    example = torch.zeros(shape, dtype=torch.uint8 if nhwc_uint8 else torch.float32)
    axes = (1, 2) if nhwc_uint8 else (2, 3)
    dynamic = {'x': {axes[0]: torch.export.Dim('height', min=4, max=16384),
                     axes[1]: torch.export.Dim('width', min=4, max=16384)}}
    table = {torch.ops.aten.pixel_shuffle.default: _pixel_shuffle_as_reshape} if pixel_shuffle == 'reshape' else None
    arch = meta.get('arch', type(net).__name__)
    graph = None
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # it narrates every step
            warnings.simplefilter('ignore')
            graph = torch.export.export(wrapped, (example,), dynamic_shapes=dynamic)
            onnx_program = torch.onnx.export(graph, dynamo=True, opset_version=OPSET, input_names=['lr'],
                                             output_names=['sr'], custom_translation_table=table)
    except Exception as err:  # the exporters raise many types; each becomes one line naming the op
        raise _export_error(err, graph, arch) from None
    model = onnx_program.model_proto
    onnx.helper.set_model_props(model, {META_KEY: json.dumps(meta)})
    onnx.save_model(model, path, save_as_external_data=False)
