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


def activation_observers(graph: torch.fx.GraphModule) -> list[tuple[str, torch.fx.Node]]:
    """(observer name, observed node) of every activation observer, in graph order."""
    found = []
    for node in graph.graph.nodes:
        name = observer_of(node)
        source = node.all_input_nodes[0] if name and node.all_input_nodes else None
        if source is not None and source.op != 'get_attr':
            found.append((name, source))
    return found


def weight_observers(graph: torch.fx.GraphModule) -> list[str]:
    """Names of the observers that read a constant (the weights)."""
    return [name for node in graph.graph.nodes
            if (name := observer_of(node)) and node.all_input_nodes and node.all_input_nodes[0].op == 'get_attr']


def observer_qparams(observer: nn.Module) -> tuple[float, int]:
    """The (scale, zero point) an observer has chosen."""
    scale, zero_point = observer.calculate_qparams()
    return float(scale), int(zero_point)


def observer_range(observer: nn.Module) -> tuple[float, float]:
    """The real range an observer's int8 (scale, zero point) covers."""
    return range_of_qparams(*observer_qparams(observer))
