"""Core ML export (.mlpackage, an ML Program), converted on Linux; running it needs macOS, so it is checked, not run.

Three precisions: fp32 (`compute_precision=FLOAT32`; Core ML computes in fp16 by default), fp16, and int8
weights (`coremltools.optimize`, per-channel symmetric; activations stay float: quantizing them needs
predictions, which need macOS). The check reads the converted program back: every op is one a plain SR network
the conversion succeeded (coremltools refuses what Core ML cannot run), every float tensor is in the precision
asked for, the fp32 program's conv weights are the network's to the bit (fp16: to fp16 rounding), and the int8w
one dequantizes int8 weights in every conv.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.deploy.file_metadata import META_KEY
from core.deploy.native_logs import native_output_to_log
from core.deploy.optional import require
from core.deploy.wrappers import NetworkOutput
from core.errors import UserError

MAX_SIDE = 4096  # input height and width the program accepts, from 4 up to this
PRECISIONS = {'coreml': 'fp32', 'coreml-fp16': 'fp16', 'coreml-int8w': 'int8w'}


@dataclass
class CoreMLCheck:
    convs: int
    weight_difference: float  # largest |Core ML conv weight − network conv weight| (fp32 and fp16 programs)
    ops: list[str]


def _program_ops(model) -> list:
    # the converted MIL program (a private attribute): the saved protobuf holds the same ops, but without the
    # typed values and constant weights read here
    return [op for function in model._mil_program.functions.values() for op in function.operations]


def _dtype(var) -> str:
    types = require('coremltools.converters.mil.mil.types', 'coremltools')
    return types.builtin_to_string(var.dtype)


def check_coreml_program(model, net: nn.Module, precision: str) -> CoreMLCheck:
    """The checks of the module docstring; raises UserError naming what does not hold."""
    ops = _program_ops(model)
    convs = [op for op in ops if op.op_type in ('conv', 'conv_transpose')]
    wanted, other = ('fp16', 'fp32') if precision == 'fp16' else ('fp32', 'fp16')
    compute = [op for op in ops if not op.op_type.startswith(('const', 'cast'))]
    wrong = [op.name for op in compute for out in op.outputs if _dtype(out) == other]
    if wrong:
        raise UserError(f'Core ML ops {", ".join(wrong[:3])} compute in {other}, not {wanted}')
    torch_weights = [m.weight.detach().numpy() for m in net.modules()
                     if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    difference = float('nan')
    if precision == 'int8w':
        dequantized = [op for op in convs if op.weight.op is not None and op.weight.op.op_type.startswith('constexpr')]
        if len(dequantized) != len(convs):
            raise UserError(f'only {len(dequantized)} of {len(convs)} Core ML convs have int8 weights')
    elif len(torch_weights) == len(convs):
        difference = max((float(np.abs(op.weight.val.astype(np.float32) - w).max())
                          for op, w in zip(convs, torch_weights, strict=True) if op.weight.val is not None and
                          op.weight.val.shape == w.shape), default=float('nan'))
    return CoreMLCheck(len(convs), difference, sorted({op.op_type for op in ops}))


def export_coreml(net: nn.Module, path: str, num_in_ch: int, meta: dict, precision: str) -> CoreMLCheck:
    """Write the .mlpackage folder at `path` (input `x`, output `sr`, any height and width from 4 to MAX_SIDE);
    returns its check."""
    ct = require('coremltools', 'coremltools')
    wrapped = NetworkOutput(net.float().eval())
    example = torch.rand(1, num_in_ch, 32, 40)
    dims = {'x': {2: torch.export.Dim('height', min=4, max=MAX_SIDE),
                  3: torch.export.Dim('width', min=4, max=MAX_SIDE)}}
    height, width = (ct.RangeDim(lower_bound=4, upper_bound=MAX_SIDE, default=side) for side in example.shape[2:])
    try:
        with native_output_to_log('coremltools'), warnings.catch_warnings():  # progress bars and version notices
            warnings.simplefilter('ignore')
            program = torch.export.export(wrapped, (example,), dynamic_shapes=dims).run_decompositions({})
            model = ct.convert(program, inputs=[ct.TensorType(name='x', shape=(1, num_in_ch, height, width))],
                               outputs=[ct.TensorType(name='sr')], convert_to='mlprogram',
                               compute_precision=ct.precision.FLOAT16 if precision == 'fp16' else
                               ct.precision.FLOAT32, minimum_deployment_target=ct.target.iOS17)
            if precision == 'int8w':
                optimize = require('coremltools.optimize.coreml', 'coremltools')
                config = optimize.OptimizationConfig(global_config=optimize.OpLinearQuantizerConfig(
                    mode='linear_symmetric', dtype='int8', granularity='per_channel', weight_threshold=0))
                model = optimize.linear_quantize_weights(model, config)
    except UserError:
        raise
    except Exception as err:  # the converter raises many types
        raise UserError(f'coremltools cannot convert this network: {str(err).splitlines()[0][:300]}') from None
    check = check_coreml_program(model, net, precision)
    model.user_defined_metadata[META_KEY] = json.dumps(meta)
    model.short_description = f"{meta.get('arch', 'network')} x{meta.get('scale')} super-resolution"
    with native_output_to_log('coremltools'):
        model.save(path)
    return check
