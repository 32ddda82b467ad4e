"""SESR → SESRInference: every linear block collapsed into one conv (biases kept as real biases)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from core.archs.sesr_arch import SESRInference
from core.converters.common import same_output, scale_from_channels
from core.converters.registry import register_converter, register_detector
from core.reparam import from_stepwise_shuffle, to_stepwise_shuffle


@torch.no_grad()
def sesr_to_plain(net: nn.Module, two_step_shuffle: bool | None = None) -> tuple[str, dict, nn.Module]:
    """Collapse every linear block; `two_step_shuffle` (x4) sets the PixelShuffle layout (None: keep the source's)."""
    relu_act = isinstance(net.acts[0], nn.ReLU) if len(net.acts) else False
    target_layout = net.two_step_shuffle if two_step_shuffle is None else two_step_shuffle
    args = dict(num_in_ch=net.first.expand.in_channels, num_out_ch=net.first.expand.in_channels,
                upscale=net.upscale, m=len(net.blocks), int_features=net.first.squeeze.out_channels, relu_act=relu_act,
                two_step_shuffle=target_layout)
    plain = SESRInference(**args).to(net.first.expand.weight.dtype)
    for source, target in zip([net.first, *net.blocks, net.last], [plain.first, *plain.blocks, plain.last],
                              strict=True):
        weight, bias = source.fold()
        if source is net.last and target_layout != net.two_step_shuffle:
            switch = to_stepwise_shuffle if target_layout else from_stepwise_shuffle
            weight, bias = switch((weight, bias), (2, 2))
        target.weight.copy_(weight)
        target.bias.copy_(bias)
    plain.acts.load_state_dict(net.acts.state_dict())
    return 'SESRInference', args, plain


register_converter('SESR', 'plain', reference=same_output, target='SESRInference')(sesr_to_plain)


@register_detector
def detect_sesr(state: Mapping[str, torch.Tensor]) -> tuple[str, dict] | None:
    """SESR (linear blocks: first.expand / first.squeeze ...) and SESRInference (first.weight, blocks.k.weight)."""
    if 'first.expand.weight' in state:
        num_in_ch, feature_size = state['first.expand.weight'].shape[1], state['first.expand.weight'].shape[0]
        m = sum(1 for k in state if re.fullmatch(r'blocks\.\d+\.expand\.weight', k))
        upscale = scale_from_channels(state['last.squeeze.weight'].shape[0], num_in_ch)
        if upscale is None:
            return None
        return 'SESR', dict(num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=upscale, m=m,
                            int_features=state['first.squeeze.weight'].shape[0], feature_size=feature_size,
                            relu_act=m > 0 and 'acts.0.weight' not in state)
    if 'first.weight' in state and 'last.weight' in state and 'blocks.0.weight' in state:
        return 'SESRInference', {}
    return None
