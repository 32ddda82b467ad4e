"""ExecuTorch export (.pte), every conv delegated to XNNPACK, in fp32 or int8.

The program takes any input size up to the export size (`--size`, the bound XNNPACK plans its memory for, so a
phone pays for no more than that): smaller images run whole and exactly as torch runs them, larger ones are tiled
to the bound by `core.deploy.tiling`. int8 uses ExecuTorch's
own XNNPACKQuantizer (core.deploy.xnnpack_quantizer) on the graph `core.deploy.pt2e_calibration` calibrates, so
the ranges are chosen exactly as for LiteRT and ONNX Runtime. Scale, input channels and receptive-field radius
are stored as constant methods (`scale`, `num_in_ch`, `radius`) that the runtime reads back.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from core.deploy.file_metadata import META_METHODS
from core.deploy.native_logs import native_output_to_log
from core.deploy.optional import require
from core.deploy.output_ranges import RangeChoice
from core.deploy.pt2e_calibration import quantize_pt2e
from core.deploy.wrappers import NetworkOutput
from core.deploy.xnnpack_quantizer import xnnpack_quantizer
from core.errors import UserError


def undelegated_ops(edge) -> list[str]:
    """Tensor op types left to ExecuTorch's portable kernels instead of XNNPACK. (A bounded dynamic program
    always leaves PixelShuffle's reshape, `aten_view_copy_default`, there: a copy, measured as fast as the fully
    delegated fixed-size program. Symbolic size arithmetic, getitem and alloc are not tensor ops.)"""
    debug = require('executorch.devtools.backend_debug', 'executorch')
    table = debug.get_delegation_info(edge.exported_program().graph_module).get_operator_delegation_dataframe()
    left = table[table['occurrences_in_non_delegated_graphs'] > 0]['op_type']
    return sorted(op for op in left if op.startswith('aten_'))


def _lower(graph: nn.Module, example: torch.Tensor, meta: dict) -> tuple[bytes, list[str]]:
    exir = require('executorch.exir', 'executorch')
    example = example.clone(memory_format=torch.contiguous_format)  # ExecuTorch refuses stride 0 (numpy gives
    # size-1 dimensions any stride, and a contiguous tensor keeps them)
    partitioner = require('executorch.backends.xnnpack.partition.xnnpack_partitioner', 'executorch')
    with native_output_to_log('executorch'), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        bound = {'x': {2: torch.export.Dim('height', min=4, max=example.shape[2]),
                       3: torch.export.Dim('width', min=4, max=example.shape[3])}}
        program = torch.export.export(graph, (example,), dynamic_shapes=bound)
        edge = exir.to_edge_transform_and_lower(program, partitioner=[partitioner.XnnpackPartitioner()],
                                                constant_methods={key: int(meta[key]) for key in META_METHODS})
        return edge.to_executorch().buffer, undelegated_ops(edge)


def _write_program(make_graph: Callable[[], nn.Module], path: str, example: torch.Tensor, meta: dict,
                   what: str) -> list[str]:
    """Lower the graph `make_graph` gives and write it; any failure on the way is one line naming `what`."""
    try:
        buffer, undelegated = _lower(make_graph(), example, meta)
    except UserError:
        raise
    except Exception as err:  # quantization, torch.export and the lowering raise many types
        raise UserError(f'ExecuTorch cannot lower {what}: {str(err).splitlines()[0][:300]}') from None
    with open(path, 'wb') as handle:
        handle.write(buffer)
    return undelegated


def export_qat_executorch(graph: torch.fx.GraphModule, path: str, example: torch.Tensor, meta: dict) -> list[str]:
    """The trained fake-quant graph as a real int8 program; no calibration: QAT learned the ranges."""
    quantize = require('torchao.quantization.pt2e.quantize_pt2e', 'torchao')
    frozen = copy.deepcopy(graph)
    frozen.eval()
    return _write_program(lambda: quantize.convert_pt2e(frozen, fold_quantize=True), path, example, meta,
                          'this QAT graph')


def export_executorch(net: nn.Module, path: str, example: torch.Tensor, meta: dict,
                      calibration: Sequence[np.ndarray] | None = None, narrow_ranges: bool = False
                      ) -> tuple[list[RangeChoice], list[str]]:
    """Write the .pte (fp32, or int8 when calibration patches are given); returns the ranges int8 chose and the
    op types XNNPACK did not take."""
    ranges: list[RangeChoice] = []

    def graph() -> nn.Module:
        if calibration is None:
            return NetworkOutput(net.float().eval())
        quantized, _, chosen = quantize_pt2e(net, calibration, narrow_ranges, xnnpack_quantizer(), fold_quantize=True)
        ranges.extend(chosen)
        return quantized

    return ranges, _write_program(graph, path, example, meta, 'this network')
