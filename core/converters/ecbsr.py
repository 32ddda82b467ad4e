"""ECBSR → ECBSRT (branches folded), ECBSRT → ECBSRET (shortcut carried, clamp folded), and both in one.

Activations on the carried channels become PReLU slope 0 (ReLU), lossless because images are ≥ 0. An
activation that is not piecewise linear through 0 (softplus) cannot carry the image, so it is refused.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from core.archs.ecbsr_arch import ECBSRET, ECBSRT
from core.archs.shared import et_width
from core.converters.common import (
    clamped_output,
    conv_params,
    same_output,
    scale_from_channels,
    scale_from_plain_width,
)
from core.converters.registry import register_converter, register_detector
from core.errors import UserError
from core.reparam import carry_hidden_layers, fold_shortcut_into_last

ECBSR_NAME = 'ECBSR_mobilesr'


def act_type_of(act: nn.Module) -> str:
    names = {nn.PReLU: 'prelu', nn.ReLU: 'relu', nn.RReLU: 'rrelu', nn.Softplus: 'softplus', nn.Identity: 'linear'}
    return names[type(act)]


def prelu_slopes(act: nn.Module, channels: int, like: torch.Tensor) -> torch.Tensor:
    """The PReLU slopes equal to `act` (in eval mode for RReLU)."""
    if isinstance(act, nn.PReLU):
        return act.weight.detach().expand(channels).clone()
    if isinstance(act, nn.ReLU):
        return like.new_zeros(channels)
    if isinstance(act, nn.Identity):
        return like.new_ones(channels)
    if isinstance(act, nn.RReLU):
        return like.new_full((channels,), (act.lower + act.upper) / 2)
    raise UserError(f'{type(act).__name__} is not piecewise linear, so ECBSRET cannot express it; '
                    'convert with --to plain instead')


@torch.no_grad()
def ecbsr_to_t(net: nn.Module) -> tuple[str, dict, nn.Module]:
    """Fold every ECB's five branches (and identity) into one 3×3 conv."""
    blocks = list(net.backbone)
    first = blocks[0].conv3x3
    args = dict(num_in_ch=first.in_channels, num_out_ch=blocks[-1].conv3x3.out_channels // net.upscale**2,
                upscale=net.upscale, num_block=len(blocks) - 2, num_feat=first.out_channels,
                act_type=act_type_of(blocks[0].act))
    plain = ECBSRT(**args).to(first.weight.dtype)
    for block, layer in zip(blocks, plain.backbone, strict=True):
        weight, bias = block.fold()
        layer[0].weight.copy_(weight)
        layer[0].bias.copy_(bias)
        if isinstance(block.act, nn.PReLU):
            layer[1].weight.copy_(block.act.weight)
    return 'ECBSRT', args, plain


@torch.no_grad()
def t_to_et(net: nn.Module) -> tuple[str, dict, nn.Module]:
    """Carry the input through ECBSRT's hidden layers and fold the shortcut and clamp into its tail."""
    layers = list(net.backbone)
    hidden = [conv_params(layer[0]) for layer in layers[:-1]]
    num_in_ch, num_feat = hidden[0][0].shape[1], hidden[0][0].shape[0]
    carried = carry_hidden_layers(hidden, num_in_ch, multiple=4)
    width = carried[-1][0].shape[0]
    last, clip = fold_shortcut_into_last(conv_params(layers[-1][0]), num_in_ch, net.upscale, width)
    args = dict(num_in_ch=num_in_ch, num_out_ch=layers[-1][0].out_channels // net.upscale**2, upscale=net.upscale,
                num_block=len(layers) - 2, num_feat=num_feat)
    et = ECBSRET(**args).to(hidden[0][0].dtype)
    assert et_width(num_feat, num_in_ch) == width
    for layer, source, (weight, bias) in zip(et.backbone, layers[:-1], carried, strict=False):
        layer[0].weight.copy_(weight)
        layer[0].bias.copy_(bias)
        slopes = torch.zeros(width, dtype=weight.dtype)
        slopes[:num_feat] = prelu_slopes(source[1], num_feat, weight)
        layer[1].weight.copy_(slopes)
    for layer, (weight, bias) in zip(list(et.backbone)[-2:], (last, clip), strict=True):
        layer[0].weight.copy_(weight)
        layer[0].bias.copy_(bias)
    return 'ECBSRET', args, et


def ecbsr_to_et(net: nn.Module) -> tuple[str, dict, nn.Module]:
    return t_to_et(ecbsr_to_t(net)[2])


register_converter(ECBSR_NAME, 'plain', reference=same_output, target='ECBSRT')(ecbsr_to_t)
register_converter(ECBSR_NAME, 'et', reference=clamped_output, target='ECBSRET')(ecbsr_to_et)
register_converter('ECBSRT', 'et', reference=clamped_output, target='ECBSRET')(t_to_et)


@register_detector
def detect_ecbsr(state: Mapping[str, torch.Tensor]) -> tuple[str, dict] | None:
    """ECBSR (keys backbone.k.conv3x3.*), ECBSRT and ECBSRET (keys backbone.k.0.*)."""
    if 'backbone.0.conv3x3.weight' in state:
        last = max(int(k.split('.')[1]) for k in state if k.endswith('.conv3x3.weight'))
        first = state['backbone.0.conv3x3.weight']
        scale = scale_from_channels(state[f'backbone.{last}.conv3x3.weight'].shape[0], first.shape[1])
        act = 'prelu' if 'backbone.0.act.weight' in state else 'relu'
        return None if scale is None else (ECBSR_NAME, dict(
            num_in_ch=first.shape[1], num_out_ch=first.shape[1], upscale=scale, num_block=last - 1,
            num_feat=first.shape[0], act_type=act))
    if 'backbone.0.0.weight' not in state or 'backbone.1.0.weight' not in state:
        return None
    last = max(int(k.split('.')[1]) for k in state if k.startswith('backbone.') and k.endswith('.0.weight'))
    first = state['backbone.0.0.weight']
    num_in_ch = first.shape[1]
    if state[f'backbone.{last}.0.weight'].shape[-1] == 1:  # the 1×1 clip conv: an ET form
        out = state[f'backbone.{last}.0.weight'].shape[0]
        scale = scale_from_plain_width(out, num_in_ch)
        return None if scale is None else ('ECBSRET', dict(
            num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=scale, num_block=last - 2,
            num_feat=first.shape[0] - num_in_ch - 1))
    scale = scale_from_channels(state[f'backbone.{last}.0.weight'].shape[0], num_in_ch)
    act = 'prelu' if 'backbone.0.1.weight' in state else 'relu'
    return None if scale is None else ('ECBSRT', dict(num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=scale,
                                                      num_block=last - 1, num_feat=first.shape[0], act_type=act))
