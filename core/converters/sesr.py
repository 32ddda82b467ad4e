"""SESR → SESRInference: every linear block collapsed into one conv (biases kept as real biases).

Both also move an x4 model between one PixelShuffle(4) and two PixelShuffle(2) (`two_step_shuffle`), which
only reorders the last conv's output channels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from core.archs.sesr_arch import SESRInference
from core.converters.common import same_output, scale_from_channels
from core.converters.registry import register_converter, register_detector
from core.errors import UserError
from core.reparam import Conv, from_stepwise_shuffle, to_stepwise_shuffle


def _relayout(conv: Conv, source_two_step: bool, target_two_step: bool) -> Conv:
    if source_two_step == target_two_step:
        return conv
    return (to_stepwise_shuffle if target_two_step else from_stepwise_shuffle)(conv, (2, 2))


def _inference_net(convs: list[Conv], acts: nn.ModuleList, upscale: int, two_step_shuffle: bool,
                   ) -> tuple[str, dict, nn.Module]:
    first = convs[0][0]
    args = dict(num_in_ch=first.shape[1], num_out_ch=first.shape[1], upscale=upscale, m=len(convs) - 2,
                int_features=first.shape[0], relu_act=len(acts) > 0 and isinstance(acts[0], nn.ReLU),
                two_step_shuffle=two_step_shuffle)
    plain = SESRInference(**args).to(first.dtype)
    for (weight, bias), target in zip(convs, [plain.first, *plain.blocks, plain.last], strict=True):
        target.weight.copy_(weight)
        target.bias.copy_(bias)
    plain.acts.load_state_dict(acts.state_dict())
    return 'SESRInference', args, plain


@torch.no_grad()
def sesr_to_plain(net: nn.Module, two_step_shuffle: bool | None = None) -> tuple[str, dict, nn.Module]:
    """Collapse every linear block; `two_step_shuffle` (x4) sets the PixelShuffle layout (None: keep the source's)."""
    layout = net.two_step_shuffle if two_step_shuffle is None else two_step_shuffle
    convs = [block.fold() for block in (net.first, *net.blocks, net.last)]
    convs[-1] = _relayout(convs[-1], net.two_step_shuffle, layout)
    return _inference_net(convs, net.acts, net.upscale, layout)


@torch.no_grad()
def sesr_inference_relayout(net: nn.Module, two_step_shuffle: bool | None = None) -> tuple[str, dict, nn.Module]:
    """An already collapsed SESR in the other PixelShuffle layout; nothing else to fold."""
    if two_step_shuffle is None:
        raise UserError("'SESRInference' is already a deployable form; only --two-step-shuffle or "
                        '--no-two-step-shuffle (its x4 PixelShuffle layout) can change it')
    convs = [(conv.weight, conv.bias) for conv in (net.first, *net.blocks, net.last)]
    convs[-1] = _relayout(convs[-1], net.two_step_shuffle, two_step_shuffle)
    return _inference_net(convs, net.acts, net.upscale, two_step_shuffle)


register_converter('SESR', 'plain', reference=same_output, target='SESRInference')(sesr_to_plain)
register_converter('SESRInference', 'plain', reference=same_output, target='SESRInference')(sesr_inference_relayout)


def _count_blocks(state: Mapping[str, torch.Tensor], key: str) -> int:
    return sum(1 for k in state if re.fullmatch(rf'blocks\.\d+\.{key}', k))


@register_detector
def detect_sesr(state: Mapping[str, torch.Tensor]) -> tuple[str, dict] | None:
    """SESR (linear blocks: first.expand / first.squeeze ...) and SESRInference (first.weight, blocks.k.weight).

    Weights cannot tell the x4 PixelShuffle layouts apart: raw files are read as one PixelShuffle(4).
    """
    if 'first.expand.weight' in state:
        num_in_ch, feature_size = state['first.expand.weight'].shape[1], state['first.expand.weight'].shape[0]
        m = _count_blocks(state, r'expand\.weight')
        upscale = scale_from_channels(state['last.squeeze.weight'].shape[0], num_in_ch)
        if upscale is None:
            return None
        return 'SESR', dict(num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=upscale, m=m,
                            int_features=state['first.squeeze.weight'].shape[0], feature_size=feature_size,
                            relu_act=m > 0 and 'acts.0.weight' not in state)
    if 'first.weight' in state and 'last.weight' in state and 'blocks.0.weight' in state:
        num_in_ch = state['first.weight'].shape[1]
        upscale = scale_from_channels(state['last.weight'].shape[0], num_in_ch)
        if upscale is None:
            return None
        return 'SESRInference', dict(num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=upscale,
                                     m=_count_blocks(state, r'weight'), int_features=state['first.weight'].shape[0],
                                     relu_act='acts.0.weight' not in state)
    return None
