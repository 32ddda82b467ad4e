"""Any checkpoint the toolkit knows, as the deployable network it stands for.

A converted checkpoint describes itself (meta); an official raw state_dict is recognised by its keys and
shapes (or an eSR file by its name); a training form is folded on the fly by its registered converter and
verified in float64 exactly as `converter.py` does, so what is deployed is what was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from basicsr.archs import build_network
from torch import nn

from core.archs.network import first_output
from core.archs.shared import input_channels
from core.convert import convert_verified, is_training_form, load_network
from core.io.checkpoint import load_checkpoint


@dataclass
class DeployModel:
    net: nn.Module
    arch: str
    args: dict
    num_in_ch: int
    scale: int
    origin: str  # one line for the user: how the network was obtained
    qat_graph: nn.Module | None = None  # the fake-quantized graph of a QAT checkpoint (net holds its float weights)


@torch.no_grad()
def input_channels_and_scale(net: nn.Module) -> tuple[int, int]:
    """Input channels and the scale, measured on a small image."""
    num_in_ch = input_channels(net)
    out = first_output(net(torch.zeros(1, num_in_ch, 8, 8)))
    return num_in_ch, out.shape[-1] // 8


def deploy_form(net: nn.Module, arch: str, args: dict,
                tolerance: float = 1e-5) -> tuple[str, dict, nn.Module, float | None]:
    """(arch, args, network, fold error): a training form folded by its converter and verified in float64, any
    other network as it is (error None). What is deployed, exported or quantization-trained is always this."""
    if not is_training_form(arch):
        return arch, args, net, None
    return convert_verified(net, arch, tolerance=tolerance)


def deploy_model(net: nn.Module, arch: str, args: dict, origin: str) -> DeployModel:
    net = net.float().eval()
    num_in_ch, scale = input_channels_and_scale(net)
    return DeployModel(net, arch, args, num_in_ch, scale, origin)


def build_deployable(arch: str, args: dict, origin: str = 'freshly initialised') -> DeployModel:
    """A deployable network from its type and arguments (benchmarks, tests)."""
    return deploy_model(build_network({'type': arch, **args}), arch, args, origin)


def load_deploy_model(path: str, opt_path: str | None = None, param_key: str | None = None,
                      tolerance: float = 1e-5, arch: str | None = None) -> DeployModel:
    """The deployable network of a checkpoint; training forms are converted and verified first.

    `opt_path` describes only a checkpoint that cannot describe itself (no meta), so a converted checkpoint can
    be passed with its training YAML (which then only supplies calibration data). `arch` reads a raw file as
    that architecture (`--arch`), for weights that fit more than one.
    """
    state, meta = load_checkpoint(path, param_key=param_key)
    if meta.get('qat'):
        from core.deploy.qat import float_weights, qat_network  # torchao only when a QAT checkpoint needs it

        graph = qat_network(meta['arch'], meta['args'], state, path)
        net = build_network({'type': meta['arch'], **meta['args']})
        net.load_state_dict(float_weights(state, net))
        model = deploy_model(net, meta['arch'], meta['args'], f"{meta['arch']} trained with QAT, from {path}")
        model.qat_graph = graph
        return model
    arch, args, net = load_network(path, opt_path, param_key, opt_over_meta=False, loaded=(state, meta), arch=arch)
    target_arch, target_args, target, diff = deploy_form(net, arch, args, tolerance)
    origin = (f'{arch} as stored in {path}' if diff is None else
              f'{arch} converted to {target_arch} (max abs difference {diff:.2g}, float64 check)')
    return deploy_model(target, target_arch, target_args, origin)
