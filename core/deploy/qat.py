"""Quantization-aware training: the deployable network with 8-bit fake quantization, trained as it will run.

`train: {qat: {weight_bits: 8, act_bits: 8, start_iter: N}}` in a training YAML switches the model at iteration N:
a training form is first folded into its deploy form (the registered converter, verified), then captured with
torch.export (dynamic batch, height and width) and prepared with torchao's PT2E QAT flow and the XNNPACK
quantizer: per-channel symmetric int8 weights, int8 activations. The input and output fake-quantizers are fixed
to pixels (scale 1/255, zero point −128), as the int8 TFLite file's edges are. litert's own quantizer cannot
prepare a QAT graph, so it only tells litert-torch, at export, that the converted graph is int8.

Two departures from torchao's defaults, so the graph trains on the int8 model that export writes:
- weights are fake-quantized with the step the converter and the runtimes use, max|w|/127 of the current
  weights. The quantizer's fused fake-quant computes ATen's symmetric step, max(−min/128, max/127), while
  `convert_pt2e` takes the observer's, max|w|/127: every weight was re-rounded at export, and the official ETDS
  x2 fine-tuned on the demo data lost 0.68 dB between the fake-quantized graph (36.897) and its own conversion
  (36.221);
- `eval()` also stops the observers (torchao's keeps them running, so each evaluation moved the ranges the
  checkpoint then saved); `train()` starts them again.

A QAT checkpoint stores the prepared graph's state (weights and fake-quant ranges) with meta
`{'arch', 'args', 'qat'}`, so training resumes, test.py evaluates the fake-quantized model, and
scripts/export.py writes the int8 TFLite without calibration.
"""

from __future__ import annotations

import types
from collections.abc import Mapping

import torch
from basicsr.archs import build_network
from torch import nn

from core.archs.shared import input_channels
from core.deploy.int8_grid import PIXEL_QPARAMS
from core.deploy.optional import require
from core.deploy.pt2e_calibration import edge_observers
from core.deploy.xnnpack_quantizer import xnnpack_quantizer
from core.errors import UserError

QAT_DEFAULTS = {'weight_bits': 8, 'act_bits': 8, 'start_iter': 0}


def check_qat_options(qat: Mapping) -> dict:
    """The `train: qat` block, completed with defaults; only what the int8 deploy path can represent."""
    unknown = sorted(set(qat) - set(QAT_DEFAULTS))
    if unknown:
        raise UserError(f"train:qat does not take {', '.join(unknown)}; it takes {', '.join(QAT_DEFAULTS)}")
    options = {**QAT_DEFAULTS, **qat}
    if options['weight_bits'] != 8 or options['act_bits'] != 8:
        raise UserError(f"train:qat supports 8-bit weights and activations (int8 TFLite), not weight_bits "
                        f"{options['weight_bits']} / act_bits {options['act_bits']}; set both to 8")
    if not isinstance(options['start_iter'], int) or options['start_iter'] < 0:
        raise UserError(f"train:qat:start_iter must be a whole number >= 0, got {options['start_iter']!r}")
    return options


def _fixed_pixel_fake_quant() -> nn.Module:
    pt2e = require('torchao.quantization.pt2e', 'torchao')
    observer = pt2e.FixedQParamsObserver.with_args(scale=PIXEL_QPARAMS[0], zero_point=PIXEL_QPARAMS[1],
                                                   dtype=torch.int8, quant_min=-128, quant_max=127)
    return pt2e.FixedQParamsFakeQuantize(observer=observer)


def rescaled_for_qat(net: nn.Module, batch: torch.Tensor) -> tuple[nn.Module, str]:
    """The deploy network with its channels rescaled for int8 (core.deploy.equalization) on a training batch, so
    fine-tuning starts where post-training int8 is best. Shapes are kept (a PReLU is not split), so a QAT
    checkpoint still rebuilds from its arch and args."""
    from core.deploy.equalization import equalize
    from core.deploy.int8_grid import activation_observer

    patches = [sample[None].detach().float().cpu().numpy() for sample in batch]
    device = next(iter([*net.parameters(), torch.empty(0)])).device
    rescaled, choices = equalize(net.cpu(), patches, activation_observer())
    moved = sum(choice.method != 'none' for choice in choices)
    return rescaled.to(device), f'{moved} of {len(choices)} conv pairs rescaled for int8 (fp32 unchanged)'


def _runtime_weight_fake_quant(device: torch.device) -> nn.Module:
    """Per-channel symmetric int8 weights on the step the runtime picks, max|w|/127 of the weights as they are
    (a moving average with constant 1)."""
    pt2e = require('torchao.quantization.pt2e', 'torchao')
    observer = pt2e.MovingAveragePerChannelMinMaxObserver.with_args(
        averaging_constant=1.0, ch_axis=0, dtype=torch.int8, quant_min=-127, quant_max=127,
        qscheme=torch.per_channel_symmetric)
    return pt2e.FakeQuantize(observer=observer, quant_min=-127, quant_max=127).to(device)


def weight_fake_quantizers(graph: torch.fx.GraphModule) -> list[str]:
    """Names of the fake-quant modules that read a parameter (the conv weights)."""
    parameters = dict(graph.named_parameters())
    return [node.target for node in graph.graph.nodes
            if node.op == 'call_module' and node.all_input_nodes and node.all_input_nodes[0].op == 'get_attr'
            and node.all_input_nodes[0].target in parameters]


def _train(graph: torch.fx.GraphModule, mode: bool = True) -> torch.fx.GraphModule:
    """train()/eval() of a QAT graph: torchao's switch, and the observers on only while training."""
    pt2e = require('torchao.quantization.pt2e', 'torchao')
    (pt2e.move_exported_model_to_train if mode else pt2e.move_exported_model_to_eval)(graph)
    graph.apply(pt2e.enable_observer if mode else pt2e.disable_observer)
    graph.training = mode
    return graph


def _eval(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    return _train(graph, False)


def prepare_qat(net: nn.Module) -> torch.fx.GraphModule:
    """The deploy network as a fake-quantized, trainable graph (train/eval work as on any module)."""
    quantize = require('torchao.quantization.pt2e.quantize_pt2e', 'torchao')
    quantizer = xnnpack_quantizer(is_qat=True)  # litert's own quantizer cannot prepare QAT graphs
    device = next(iter([*net.parameters(), *net.buffers()]), torch.empty(0)).device
    example = torch.rand(2, input_channels(net), 16, 16, device=device)
    dynamic = {'x': {0: torch.export.Dim('batch', min=1, max=4096), 2: torch.export.Dim('height', min=4, max=16384),
                     3: torch.export.Dim('width', min=4, max=16384)}}
    graph = torch.export.export(net, (example,), dynamic_shapes=dynamic).module()
    prepared = quantize.prepare_qat_pt2e(graph, quantizer)
    inputs, outputs = edge_observers(prepared)
    for name in inputs + outputs:
        setattr(prepared, name, _fixed_pixel_fake_quant().to(example.device))
    for name in weight_fake_quantizers(prepared):
        setattr(prepared, name, _runtime_weight_fake_quant(example.device))
    # bound methods, so a deepcopy of the graph switches itself (copy rebinds them to the copy)
    prepared.train = types.MethodType(_train, prepared)
    prepared.eval = types.MethodType(_eval, prepared)
    return prepared


def qat_network(arch: str, args: dict, state: Mapping[str, torch.Tensor], source: str) -> torch.fx.GraphModule:
    """A QAT checkpoint's graph, rebuilt and loaded (weights and fake-quant ranges)."""
    graph = prepare_qat(build_network({'type': arch, **args}))
    missing, unexpected = graph.load_state_dict(dict(state), strict=False)
    if missing or unexpected:
        first = (missing or unexpected)[0]
        raise UserError(f"{source} is not a QAT checkpoint of {arch}: '{first}' does not fit; re-save it from "
                        'training with train:qat')
    graph.eval()  # torchao's eval for exported graphs returns None
    return graph


def float_weights(state: Mapping[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """The plain weights inside a QAT state (for fp32 export of a QAT-trained model)."""
    own = net.state_dict()
    return {k: v for k, v in state.items() if k in own}
