"""Per-group int8 scales before tanh and sigmoid, by splitting a conv's output channels (exact in fp32).

Rescaling (core.deploy.equalization) gives a narrow channel more of its tensor's int8 levels across ReLU, but
tanh and sigmoid do not commute with a scale. ESPCN's first conv feeds tanh with channels whose useful input
ranges differ eightfold; one per-tensor scale for all 64 lost 1.13 dB on the official ESPCN x2 (simulated, Set5),
where a scale per channel would lose 0.05. So a conv → tanh/sigmoid → conv chain may run as GROUPS convs over
channels of similar range, each with its own activation (and so its own int8 scale), concatenated, where that
cuts the chain's int8 error at the network's output WORTH-fold (each group re-reads the conv's input); the consumer
reads its columns in the concatenated order (`core.reparam.equalize.group_channels`). Four groups lost 0.08 dB
in the same simulation; the outputs of tanh and sigmoid have fixed int8 scales, so the concatenation adds no
rounding of its own. The result is checked in float64 like every other transformation here.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from core.archs.network import first_output
from core.archs.shared import input_channels
from core.deploy.equalization import EXACTNESS, exactness_inputs, max_difference
from core.deploy.int8_grid import fake_quantize, fitted_range, qparams_for_range, saturating_activation
from core.errors import UserError
from core.reparam.equalize import group_channels

GROUPS = 4  # per conv; measured on ESPCN x2 (simulated): 2 groups lost 0.18 dB, 3 lost 0.09, 4 lost 0.08
WORTH = 4  # split only where the groups cut the simulated output error at least this much: a group re-reads the
# conv's whole input, so the split costs time. ESPCN x2: conv1's error fell 18.6-fold (kept), conv2's 2.2-fold
# (not kept). Cost measured side by side in LiteRT: ESPCN x4 with both split ran 2.6x slower than its plain
# int8 file; the official ESPCN x2 with conv1 split, 2.07x slower (5.72 vs 2.76 ms at 120x120), for 1 dB.
# --no-equalize gives the fast file back.
_ACTIVATIONS = {torch.tanh: 'tanh', torch.sigmoid: 'sigmoid'}


class ChannelGroups(nn.Module):
    """conv → activation per group of output channels, concatenated."""

    def __init__(self, convs: Sequence[nn.Conv2d], activation: str) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        function = torch.tanh if self.activation == 'tanh' else torch.sigmoid
        return torch.cat([function(conv(x)) for conv in self.convs], dim=1)


def _plain_conv(module: nn.Module) -> bool:
    return type(module) is nn.Conv2d and module.groups == 1


def _chains(graph: torch.fx.GraphModule) -> list[tuple[torch.fx.Node, torch.fx.Node, list[torch.fx.Node]]]:
    """(conv, activation, consumer convs) for every conv whose only user is tanh or sigmoid read only by convs."""
    chains = []
    for node in graph.graph.nodes:
        if node.op != 'call_function' or node.target not in _ACTIVATIONS or len(node.args) != 1:
            continue
        producer = node.args[0]
        if not (isinstance(producer, torch.fx.Node) and producer.op == 'call_module' and len(producer.users) == 1
                and _plain_conv(graph.get_submodule(producer.target))):
            continue
        consumers = list(node.users)
        if consumers and all(user.op == 'call_module' and _plain_conv(graph.get_submodule(user.target))
                             and user.args[0] is node for user in consumers):
            chains.append((producer, node, consumers))
    return chains


def _split(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    part = nn.Conv2d(conv.in_channels, weight.shape[0], conv.kernel_size, conv.stride, conv.padding,
                     conv.dilation).to(weight)
    with torch.no_grad():
        part.weight.copy_(weight)
        part.bias.copy_(bias)
    return part


def _groups_by_range(z: torch.Tensor, activation: str, count: int) -> list[torch.Tensor]:
    """Channels sorted by the width of the int8 range that suits them before the activation, in `count` runs."""
    function = saturating_activation(activation)
    widths = []
    for channel in z.transpose(0, 1).flatten(1):
        fitted = fitted_range(channel, function)
        widths.append(0.0 if fitted is None else fitted[1] - fitted[0])
    order = torch.argsort(torch.tensor(widths), stable=True)
    return [group for group in torch.tensor_split(order, min(count, len(order))) if len(group)]


def _activation_qparams(z: torch.Tensor, activation: str) -> tuple[float, int]:
    fitted = fitted_range(z, saturating_activation(activation))
    return (1.0, 0) if fitted is None else qparams_for_range(*fitted)


def _output_error(graph: torch.fx.GraphModule, conv: str, members: Sequence[torch.Tensor], activation: str,
                  z: torch.Tensor, batch: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean squared error at the network's output with only this conv's output in int8, one scale per group."""
    quantized = torch.empty_like(z)
    for index in members:
        quantized[:, index] = fake_quantize(z[:, index], _activation_qparams(z[:, index], activation))
    handle = graph.get_submodule(conv).register_forward_hook(lambda *_: quantized)
    try:
        return float((first_output(graph(batch)) - reference).pow(2).mean())
    finally:
        handle.remove()


@torch.no_grad()
def group_saturating_channels(net: nn.Module, calibration: Sequence[np.ndarray], groups: int = GROUPS,
                              tolerance: float = EXACTNESS) -> tuple[nn.Module, int]:
    """A copy of `net` whose conv → tanh/sigmoid → conv chains run in channel groups where that cuts their int8
    error at the output at least WORTH-fold, and how many were split; `net` itself when none was (or it cannot be
    traced, in which case there is nothing to split)."""
    original = net.float().eval()
    try:
        traced = torch.fx.symbolic_trace(copy.deepcopy(original))
    except Exception:  # noqa: BLE001 - an untraceable network simply has no chain found this way
        return original, 0
    chains = _chains(traced)
    if not chains:
        return original, 0
    batch = torch.cat([torch.from_numpy(patch) for patch in calibration])
    captured: dict[str, torch.Tensor] = {}
    hooks = [traced.get_submodule(conv.target).register_forward_hook(
        lambda _m, _i, out, name=conv.target: captured.__setitem__(name, out)) for conv, _, _ in chains]
    reference = first_output(traced(batch))
    for hook in hooks:
        hook.remove()
    worth = []
    for producer, activation_node, consumers in chains:
        z, activation = captured[producer.target], _ACTIVATIONS[activation_node.target]
        members = _groups_by_range(z, activation, groups)
        whole = _output_error(traced, producer.target, [torch.arange(z.shape[1])], activation, z, batch, reference)
        split = _output_error(traced, producer.target, members, activation, z, batch, reference)
        if split * WORTH <= whole:
            worth.append((producer, activation_node, consumers, members))
    if not worth:
        return original, 0
    traced = traced.double()
    for producer, activation_node, consumers, members in worth:
        conv = traced.get_submodule(producer.target)
        activation = _ACTIVATIONS[activation_node.target]
        for consumer_node in consumers:
            consumer = traced.get_submodule(consumer_node.target)
            parts, (weight, _) = group_channels((conv.weight, conv.bias), (consumer.weight, consumer.bias), members)
            consumer.weight.copy_(weight)
        # the groups take the conv's place (and its place in the module order, which input_channels reads)
        traced.set_submodule(producer.target, ChannelGroups([_split(conv, w, b) for w, b in parts], activation))
        activation_node.replace_all_uses_with(producer)
        traced.graph.erase_node(activation_node)
    traced.graph.lint()
    traced.recompile()
    diff = max_difference(original, traced, exactness_inputs(input_channels(original), calibration))
    if not diff <= tolerance:
        raise UserError(f'splitting the channels before tanh/sigmoid changed the fp32 output by {diff:.3g} '
                        f'(> {tolerance:g}, float64); export with --no-equalize')
    return traced.float(), len(worth)

