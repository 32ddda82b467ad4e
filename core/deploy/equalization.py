"""Rescale a deployable network's channels so that int8 costs less, without changing what it computes in fp32.

The network is captured with torch.export (as every exporter here does), and each conv → ReLU/PReLU/nothing →
conv chain in it is a pair whose channels `core.reparam.equalize` may rescale exactly (and whose PReLU it may
split into ReLU channels). For each pair, the scales are chosen by the error they cause: calibration patches run
through the fp32 network with the consumer's output replaced by what it gives when its input tensor is quantized
per tensor (asymmetric int8, with the runtime's observer) and its weights per output channel (symmetric int8), and
the network's output is compared, over a family of candidate scales. The error at a pair depends only on that
pair's scales (a consumer's rows are quantized per channel, so rescaling its outputs later changes nothing), so
pairs are chosen one at a time.

The result is checked in float64 against the original on random images and on the calibration patches: if any
pair moved the output by more than the tolerance, the pair is named and nothing is returned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from core.archs.network import first_output
from core.archs.shared import input_channels
from core.deploy.int8_grid import fake_quantize, observed_qparams, on_grid
from core.errors import UserError
from core.reparam.clamp import is_unit_clip
from core.reparam.equalize import cross_layer_scales, migration_scales, rescale_channels, split_prelu

ALPHAS = tuple(i / 8 for i in range(9))  # the migration exponents tried, besides no rescaling and Nagel's CLE
SEARCH_PATCHES = 8  # calibration patches used to choose the scales (the observers still see all of them)
EXACTNESS = 1e-6  # float64 max abs difference a rescaled network may show against the original


@dataclass(frozen=True)
class ConvPair:
    """producer conv → activation → consumer conv, by module path; rescaling acts on their weights."""

    producer: str
    activation: str  # 'relu', 'identity', or the module path of a PReLU
    consumer: str
    transposed: bool  # the consumer is a ConvTranspose2d (input channels on weight dimension 0)

    @property
    def activation_runs_apart(self) -> bool:
        """A PReLU runs as an op of its own, so the conv output before it is stored (and quantized) too; ReLU
        fuses into the conv."""
        return self.activation not in ('relu', 'identity')


@dataclass(frozen=True)
class PairChoice:
    pair: ConvPair
    method: str  # 'none', 'cle' or 'alpha=…'
    error_before: float  # mean squared error of the network's output with this pair simulated in int8, unscaled
    error_after: float


_CONVS = {torch.ops.aten.conv2d.default: False, torch.ops.aten.conv_transpose2d.input: True}


def _groups(node: torch.fx.Node) -> int:
    index = 6
    return int(node.args[index]) if len(node.args) > index else 1


def _activation_of(node: torch.fx.Node, parameters: dict[str, str]) -> tuple[str, torch.fx.Node] | None:
    """('relu' | PReLU path, its node) for a node whose only user is such an activation, else None."""
    users = list(node.users)
    if len(users) != 1 or users[0].op != 'call_function':
        return None
    user = users[0]
    if user.target is torch.ops.aten.relu.default:
        return 'relu', user
    if user.target is torch.ops.aten.prelu.default and user.args[1].name in parameters:
        return parameters[user.args[1].name].rsplit('.', 1)[0], user
    return None


def conv_pairs(net: nn.Module, num_in_ch: int | None = None) -> list[ConvPair]:
    """Every conv → (ReLU | PReLU | nothing) → conv chain of `net`, found in its exported graph."""
    num_in_ch = num_in_ch or input_channels(net)
    program = torch.export.export(copy.deepcopy(net).float().eval(), (torch.rand(1, num_in_ch, 16, 16),))
    parameters = dict(program.graph_signature.inputs_to_parameters)

    def module(node: torch.fx.Node) -> str | None:
        if node.op != 'call_function' or node.target not in _CONVS or _groups(node) != 1:
            return None
        weight = node.args[1]
        path = parameters.get(weight.name) if isinstance(weight, torch.fx.Node) else None
        return path.rsplit('.', 1)[0] if path else None

    pairs = []
    for node in program.graph.nodes:
        producer = module(node)
        if producer is None or _CONVS[node.target]:
            continue
        found = _activation_of(node, parameters)
        activation, tail = found if found is not None else ('identity', node)
        users = list(tail.users)
        if len(users) != 1 or users[0].args[0] is not tail or (consumer := module(users[0])) is None:
            continue
        pairs.append(ConvPair(producer, activation, consumer, _CONVS[users[0].target]))
    return pairs


def apply_activation(net: nn.Module, kind: str | None, z: torch.Tensor) -> torch.Tensor:
    """A pair's activation ('relu', 'identity' or None, or a PReLU's module path) applied to z."""
    if kind == 'relu':
        return F.relu(z)
    if kind in (None, 'identity'):
        return z
    return net.get_submodule(kind)(z)


def _conv_params(conv: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    weight = conv.weight.detach()
    bias = conv.bias.detach() if conv.bias is not None else weight.new_zeros(conv.out_channels)
    return weight, bias


def is_unit_clip_conv(conv: nn.Module) -> bool:
    """The clip conv `core.reparam.clamp` appends (v = ReLU(1 − u)), as a module."""
    return isinstance(conv, nn.Conv2d) and is_unit_clip(conv.weight.detach(), conv.bias)


class Quantizers:
    """What the runtime does to a pair: one observer per activation tensor, symmetric int8 per weight row."""

    def __init__(self, observer: Callable[[], nn.Module], weights: bool = True) -> None:
        self.observer, self.weights = observer, weights

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quantize(x, observed_qparams(x, self.observer))

    def weight(self, w: torch.Tensor, axis: int) -> torch.Tensor:
        return on_grid(w, axis) if self.weights else w


def _simulated_output(net: nn.Module, pair: ConvPair, z: torch.Tensor, scales: torch.Tensor,
                      quant: Quantizers) -> torch.Tensor:
    """The consumer's output, in the original units, when the pair is rescaled by `scales` and its input
    tensor(s) and weights are quantized as the runtime will."""
    consumer = net.get_submodule(pair.consumer)
    weight, bias = _conv_params(consumer)
    in_dim = 0 if pair.transposed else 1
    shape = [1] * weight.dim()
    shape[in_dim] = -1
    zs = z / scales.view(1, -1, 1, 1)
    if pair.activation_runs_apart:  # its input is quantized too
        zs = quant.activation(zs)
    x = quant.activation(apply_activation(net, pair.activation, zs))
    w = quant.weight(weight * scales.view(shape), axis=1 if pair.transposed else 0)
    return _run_conv(consumer, x, w, bias)


@torch.no_grad()
def _output_error(net: nn.Module, pair: ConvPair, consumer_output: torch.Tensor, batch: torch.Tensor,
                  reference: torch.Tensor) -> float:
    """Mean squared error of the network's output when the consumer's output is replaced: an error matters
    by what the rest of the network makes of it (a carried-image channel reaches the output, a feature may not)."""
    hook = net.get_submodule(pair.consumer).register_forward_hook(lambda *_: consumer_output)
    try:
        return float((first_output(net(batch)) - reference).pow(2).mean())
    finally:
        hook.remove()


def _run_conv(conv: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    if isinstance(conv, nn.ConvTranspose2d):
        return F.conv_transpose2d(x, weight, bias, conv.stride, conv.padding, conv.output_padding, conv.groups,
                                  conv.dilation)
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def _candidates(net: nn.Module, pair: ConvPair, z: torch.Tensor) -> dict[str, torch.Tensor]:
    producer_weight, _ = _conv_params(net.get_submodule(pair.producer))
    consumer_weight, _ = _conv_params(net.get_submodule(pair.consumer))
    in_dim = 0 if pair.transposed else 1
    x = apply_activation(net, pair.activation, z)
    quantized = z if pair.activation_runs_apart else x  # the widest tensor the runtime stores
    ranges = quantized.abs().transpose(0, 1).flatten(1).amax(dim=1)  # a 99.99th percentile chose the same
    options = {'cle': cross_layer_scales(producer_weight, consumer_weight, in_dim)}
    for alpha in ALPHAS:
        options[f'alpha={alpha:g}'] = migration_scales(ranges, consumer_weight, alpha, in_dim)
    return options


@torch.no_grad()
def _apply(net: nn.Module, pair: ConvPair, scales: torch.Tensor) -> None:
    producer, consumer = net.get_submodule(pair.producer), net.get_submodule(pair.consumer)
    (pw, pb), (cw, _) = rescale_channels(_conv_params(producer), _conv_params(consumer),
                                         scales.to(producer.weight.dtype), 0 if pair.transposed else 1)
    producer.weight.copy_(pw)
    if producer.bias is not None:
        producer.bias.copy_(pb)
    consumer.weight.copy_(cw)


def _pairs_to_rescale(net: nn.Module, pairs: Sequence[ConvPair]) -> list[ConvPair]:
    """All pairs but the clamp tail's (its consumer is the unit clip, whose input the exporter pins to [0, 1])."""
    return [pair for pair in pairs if not is_unit_clip_conv(net.get_submodule(pair.consumer))]


@torch.no_grad()
def _producer_outputs(net: nn.Module, pairs: Sequence[ConvPair], batch: torch.Tensor) -> dict[str, torch.Tensor]:
    outputs: dict[str, torch.Tensor] = {}
    hooks = [net.get_submodule(pair.producer).register_forward_hook(
        lambda _m, _i, out, name=pair.producer: outputs.__setitem__(name, out.detach())) for pair in pairs]
    try:
        net(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


@torch.no_grad()
def float64_outputs(net: nn.Module, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The network's outputs on the inputs, run in float64 (on a copy)."""
    double = copy.deepcopy(net).double().eval()
    return [first_output(double(x.double())) for x in inputs]


def largest_difference(expected: Sequence[torch.Tensor], net: nn.Module, inputs: Sequence[torch.Tensor]) -> float:
    """Largest |net − expected| over the inputs, `net` run in float64."""
    return max(float((out - ref).abs().max()) for out, ref in zip(float64_outputs(net, inputs), expected,
                                                                  strict=True))


def max_difference(original: nn.Module, rescaled: nn.Module, inputs: Sequence[torch.Tensor]) -> float:
    """Largest |rescaled − original| over the inputs, both run in float64."""
    return largest_difference(float64_outputs(original, inputs), rescaled, inputs)


def exactness_inputs(num_in_ch: int, calibration: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """Random images of an odd size, and up to two calibration patches: what the float64 check runs on."""
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.rand(2, num_in_ch, 23, 19, generator=generator)]
    return inputs + [torch.from_numpy(patch) for patch in calibration[:2]]


@torch.no_grad()
def equalize(net: nn.Module, calibration: Sequence[np.ndarray], observer: Callable[[], nn.Module],
             tolerance: float = EXACTNESS, weights: bool = True) -> tuple[nn.Module, list[PairChoice]]:
    """A rescaled copy of `net` (same fp32 function, checked in float64) and the choice made at every pair."""
    original = net.float().eval()
    rescaled = copy.deepcopy(original).double()  # rescaled and checked in float64, cast back once at the end
    num_in_ch = input_channels(original)
    pairs = _pairs_to_rescale(rescaled, conv_pairs(original, num_in_ch))
    batch = torch.cat([torch.from_numpy(patch) for patch in calibration[:SEARCH_PATCHES]])
    quant = Quantizers(observer, weights)
    produced = _producer_outputs(original, pairs, batch)
    reference = first_output(original(batch))
    checks = exactness_inputs(num_in_ch, calibration)
    expected = float64_outputs(original, checks)  # once: every pair is checked against the same outputs
    choices = []
    for pair in pairs:
        z = produced[pair.producer]
        options = {'none': torch.ones(z.shape[1]), **_candidates(original, pair, z)}
        errors = {name: (_output_error(original, pair, _simulated_output(original, pair, z, scales, quant), batch,
                                       reference), scales)
                  for name, scales in options.items()}
        method = min(errors, key=lambda name: errors[name][0])
        _apply(rescaled, pair, errors[method][1])
        diff = largest_difference(expected, rescaled, checks)
        if not diff <= tolerance:
            raise UserError(f'rescaling {pair.producer} -> {pair.consumer} changed the fp32 output by {diff:.3g} '
                            f'(> {tolerance:g}, float64); export with --no-equalize')
        choices.append(PairChoice(pair, method, errors['none'][0], errors[method][0]))
    return rescaled.float(), choices


def _widened(conv: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Module:
    """A copy of `conv` with new weights whose channel counts may differ."""
    transposed = isinstance(conv, nn.ConvTranspose2d)
    in_ch, out_ch = (weight.shape[0], weight.shape[1]) if transposed else (weight.shape[1], weight.shape[0])
    kwargs = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation, bias=bias is not None)
    if transposed:
        kwargs['output_padding'] = conv.output_padding
    new = type(conv)(in_ch, out_ch, conv.kernel_size, **kwargs).to(weight)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new


@torch.no_grad()
def split_prelus(net: nn.Module, tolerance: float = EXACTNESS) -> tuple[nn.Module, int]:
    """A copy of `net` in which every conv → PReLU → conv pair runs with ReLU (`core.reparam.equalize.
    split_prelu`), and how many pairs were split; the copy is checked in float64 like a rescaling. A network with
    no such pair is returned as it is."""
    original = net.float().eval()
    split = copy.deepcopy(original).double()
    num_in_ch = input_channels(original)
    pairs = [pair for pair in conv_pairs(original, num_in_ch) if pair.activation_runs_apart]
    if not pairs:
        return original, 0
    for pair in pairs:
        producer, consumer = split.get_submodule(pair.producer), split.get_submodule(pair.consumer)
        slopes = split.get_submodule(pair.activation).weight.detach().expand(producer.out_channels)
        (pw, pb), (cw, _) = split_prelu(_conv_params(producer), slopes, _conv_params(consumer),
                                        0 if pair.transposed else 1)
        split.set_submodule(pair.producer, _widened(producer, pw, pb))
        split.set_submodule(pair.consumer, _widened(consumer, cw, consumer.bias))
        split.set_submodule(pair.activation, nn.ReLU())
    diff = max_difference(original, split, exactness_inputs(num_in_ch, []))
    if not diff <= tolerance:
        raise UserError(f'splitting the PReLUs changed the fp32 output by {diff:.3g} (> {tolerance:g}, float64)')
    return split.float(), len(pairs)
