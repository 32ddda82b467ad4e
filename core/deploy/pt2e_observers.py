"""Reading a PT2E-prepared graph's observers: which node each watches and the int8 range it has chosen.

One place for what the calibration (core.deploy.pt2e_calibration) and the output-error search
(core.deploy.output_ranges) both need to find in the graph.
"""

from __future__ import annotations

import torch
from torch import nn

from core.deploy.int8_grid import range_of_qparams


def observer_of(node: torch.fx.Node) -> str | None:
    """The observer's module name, if `node` calls one."""
    return node.target if node.op == 'call_module' and 'activation_post_process' in str(node.target) else None


def _watches_weights(graph: torch.fx.GraphModule, node: torch.fx.Node, name: str) -> bool:
    """A constant, or a per-channel observer: weights the graph computes (Bicubic's taps, a repeat of a buffer)
    are observed per channel like stored ones, and activations never are."""
    return node.all_input_nodes[0].op == 'get_attr' or hasattr(getattr(graph, name), 'ch_axis')


def activation_observers(graph: torch.fx.GraphModule) -> list[tuple[str, torch.fx.Node]]:
    """(observer name, observed node) of every activation observer, in graph order."""
    return [(name, node.all_input_nodes[0]) for node in graph.graph.nodes
            if (name := observer_of(node)) and node.all_input_nodes and not _watches_weights(graph, node, name)]


def weight_observers(graph: torch.fx.GraphModule) -> list[str]:
    """Names of the observers of weights (see _watches_weights)."""
    return [name for node in graph.graph.nodes
            if (name := observer_of(node)) and node.all_input_nodes and _watches_weights(graph, node, name)]


def observer_qparams(observer: nn.Module) -> tuple[float, int]:
    """The (scale, zero point) an observer has chosen."""
    scale, zero_point = observer.calculate_qparams()
    return float(scale), int(zero_point)


def observer_range(observer: nn.Module) -> tuple[float, float]:
    """The real range an observer's int8 (scale, zero point) covers."""
    return range_of_qparams(*observer_qparams(observer))
