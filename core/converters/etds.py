"""ETDS (and its dual-stream ablations) → ETDSForInference, exactly.

The two streams become one of num_feat channels with block upper-triangular kernels [[B, A], [0, R]]
(full [[B, A], [D, R]] for the advanced ablation); the output convs are joined and their biases summed;
the final clamp is folded into conv_last and a 1×1 clip conv (see core.reparam.clamp).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from core.archs.etds_arch import ETDSForInference
from core.converters.common import clamped_output, conv_params, scale_from_channels
from core.converters.registry import register_converter, register_detector
from core.reparam import clamp_tail, join_inputs, merge_dual_stream, pad_out_channels, stack_outputs

DUAL_STREAM_ARCHS = ('ETDS', 'ETDSAblationResidual', 'ETDSAblationAdvancedResidual')


def dual_stream_to_plain(net: nn.Module) -> tuple[str, dict, nn.Module]:
    """Fold a dual-stream ETDS network into ETDSForInference with the same (clamped) output."""
    num_block = len(net.backbone_convs)
    first = stack_outputs(conv_params(net.conv_first), conv_params(net.conv_residual_first))
    blocks = []
    for i in range(num_block):
        to_backbone = conv_params(net.add_residual_convs[i]) if hasattr(net, 'add_residual_convs') else None
        to_residual = conv_params(net.advanced_residual_convs[i]) if hasattr(net, 'advanced_residual_convs') else None
        blocks.append(merge_dual_stream(conv_params(net.backbone_convs[i]), conv_params(net.residual_convs[i]),
                                        to_backbone, to_residual))
    last = pad_out_channels(join_inputs(conv_params(net.conv_last), conv_params(net.conv_residual_last)), 4)
    last, clip = clamp_tail(last)
    num_in_ch = net.conv_first.in_channels
    args = dict(num_in_ch=num_in_ch, num_out_ch=net.conv_last.out_channels // net.upscale**2,
                upscale=net.upscale, num_block=num_block, num_feat=first[0].shape[0],
                num_residual_feat=net.conv_residual_first.out_channels)
    plain = ETDSForInference(**args).to(first[0].dtype)
    convs = [plain.conv_first, *plain.backbone_convs, plain.conv_last, plain.conv_clip]
    with torch.no_grad():
        for conv, (weight, bias) in zip(convs, [first, *blocks, last, clip], strict=True):
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
    return 'ETDSForInference', args, plain


for _arch in DUAL_STREAM_ARCHS:  # ETDSForInference is both the plain and the ET form
    for _kind in ('et', 'plain'):
        register_converter(_arch, _kind, reference=clamped_output, target='ETDSForInference')(dual_stream_to_plain)


@register_detector
def detect_etds(state: Mapping[str, torch.Tensor]) -> tuple[str, dict] | None:
    """Recognise the ETDS family from its keys; the output channels are assumed equal to the input's."""
    if 'conv_residual_first.weight' not in state or 'conv_first.weight' not in state:
        return None
    num_block = sum(1 for k in state if k.startswith('backbone_convs.') and k.endswith('.weight'))
    if 'advanced_residual_convs.0.weight' in state:
        arch = 'ETDSAblationAdvancedResidual'
    elif num_block and 'add_residual_convs.0.weight' not in state:
        arch = 'ETDSAblationResidual'
    else:
        arch = 'ETDS'
    num_in_ch = state['conv_first.weight'].shape[1]
    backbone_feat = state['conv_first.weight'].shape[0]
    residual_feat = state['conv_residual_first.weight'].shape[0]
    upscale = scale_from_channels(state['conv_last.weight'].shape[0], num_in_ch)
    if upscale is None:
        return None
    return arch, dict(num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=upscale, num_block=num_block,
                      num_feat=backbone_feat + residual_feat, num_residual_feat=residual_feat)
