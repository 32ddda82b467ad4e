"""ABPN → ABPN_ET: the repeated-input shortcut carried in 3 channels, the clamp folded into the tail."""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from core.archs.abpn_arch import ABPN_ET
from core.converters.common import clamped_output, conv_params, scale_from_channels, scale_from_plain_width
from core.converters.registry import register_converter, register_detector
from core.reparam import carry_hidden_layers, fold_shortcut_into_last


def abpn_convs(backbone: nn.Sequential) -> list[nn.Conv2d]:
    """The Conv2d layers of an ABPN-style backbone, in order (bare or as the first item of a block)."""
    return [m if isinstance(m, nn.Conv2d) else m[0] for m in backbone if isinstance(m, (nn.Conv2d, nn.Sequential))]


@torch.no_grad()
def abpn_to_et(net: nn.Module) -> tuple[str, dict, nn.Module]:
    convs = abpn_convs(net.backbone)
    hidden = [conv_params(c) for c in convs[:-1]]
    carried = carry_hidden_layers(hidden, 3, multiple=2)
    last, clip = fold_shortcut_into_last(conv_params(convs[-1]), 3, net.scale, carried[-1][0].shape[0])
    args = dict(num_feat=convs[0].out_channels, num_block=len(convs) - 3, scale=net.scale)
    et = ABPN_ET(**args).to(hidden[0][0].dtype)
    for conv, (weight, bias) in zip(abpn_convs(et.backbone), [*carried, last, clip], strict=True):
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return 'ABPN_ET', args, et


register_converter('ABPN', 'et', reference=clamped_output, target='ABPN_ET')(abpn_to_et)


@register_detector
def detect_abpn(state: Mapping[str, torch.Tensor]) -> tuple[str, dict] | None:
    """ABPN and ABPN_ET: keys backbone.0.weight, backbone.k.0.weight for the body, bare convs in the tail."""
    if 'backbone.0.weight' not in state or 'backbone.2.0.weight' not in state:
        return None
    num_block = sum(1 for k in state if re.fullmatch(r'backbone\.\d+\.0\.weight', k))
    tail = state[f'backbone.{num_block + 2}.weight'].shape[0]
    if f'backbone.{num_block + 6}.weight' in state:
        out = state[f'backbone.{num_block + 6}.weight'].shape[0]
        scale = scale_from_plain_width(out, 3)
        return None if scale is None else ('ABPN_ET', dict(num_feat=state['backbone.0.weight'].shape[0] - 4,
                                                          num_block=num_block, scale=scale))
    scale = scale_from_channels(tail, 3)
    return None if scale is None else ('ABPN', dict(num_feat=state['backbone.0.weight'].shape[0],
                                                   num_block=num_block, scale=scale))
