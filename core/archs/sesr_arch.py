"""SESR: collapsible linear blocks, trained collapsed (one conv per block per step) or expanded.

A linear block is an expanded k×k conv (in → feature_size) followed by a 1×1 conv (feature_size → out) with
nothing between, so it is one k×k conv; a residual block adds the identity at the centre tap. `SESR`
is the training form; `SESRInference` is its deploy form: one conv per block, the same residuals,
activations, PixelShuffle and clamp.
"""

from __future__ import annotations

from math import prod

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from core.archs.detection import State, count_indexed, raw_layout, scale_from_channels
from core.archs.network import DeployForm, SRNetwork, built_like, conv_params, load_convs, same_output
from core.archs.shared import repeat_channels
from core.errors import UserError
from core.reparam import Conv, compose_kxk_1x1, from_stepwise_shuffle, identity_kernel, to_stepwise_shuffle

BLOCK_TYPES = ('collapsed', 'expanded')


class LinearBlock(nn.Module):
    """k×k conv (in→feature_size) then 1×1 conv (feature_size→out), optionally + x; no non-linearity inside."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, feature_size: int, residual: bool = False,
                 block_type: str = 'collapsed') -> None:
        super().__init__()
        if block_type not in BLOCK_TYPES:
            raise UserError(f"unknown linear_block_type '{block_type}'; choose {' or '.join(BLOCK_TYPES)}")
        self.block_type = block_type
        self.residual = residual and in_ch == out_ch
        self.expand = nn.Conv2d(in_ch, feature_size, kernel_size, padding=kernel_size // 2)
        self.squeeze = nn.Conv2d(feature_size, out_ch, 1)

    def fold(self) -> Conv:
        """The single k×k conv this block equals (identity included for a residual block)."""
        weight, bias = compose_kxk_1x1((self.expand.weight, self.expand.bias), (self.squeeze.weight, self.squeeze.bias))
        if self.residual:
            weight = weight + identity_kernel(weight.shape[0], weight.shape[-1], weight.dtype).to(weight.device)
        return weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.block_type == 'collapsed':
            weight, bias = self.fold()
            return F.conv2d(x, weight, bias, padding=weight.shape[-1] // 2)
        y = self.squeeze(self.expand(x))
        return y + x if self.residual else y


def _activation(channels: int, relu_act: bool) -> nn.Module:
    """PReLU as in the paper; ReLU when the model is meant for int8 quantization."""
    return nn.ReLU() if relu_act else nn.PReLU(channels)


def shuffle_steps(upscale: int, two_step_shuffle: bool) -> tuple[int, ...]:
    """(4,) or (2, 2) at x4: the same function up to the last conv's channel order (core.reparam.shuffle)."""
    if not two_step_shuffle:
        return (upscale,)
    if upscale != 4:
        raise UserError(f'two_step_shuffle means two PixelShuffle(2), so it needs upscale 4 (got {upscale})')
    return (2, 2)


def _sesr_forward(x: torch.Tensor, first, blocks, acts, last, steps: tuple[int, ...]) -> torch.Tensor:
    f0 = first(x)
    h = f0
    for block, act in zip(blocks, acts, strict=True):
        h = act(block(h))
    upscale = prod(steps)
    out = last(h + f0) + repeat_channels(x, upscale * upscale)
    for step in steps:
        out = F.pixel_shuffle(out, step)
    return out.clamp(0, 1)


@ARCH_REGISTRY.register()
class SESR(SRNetwork):
    """f0 = LB5×5(x); m × [h = act(LB3×3(h) + h)]; y = clamp(PS(LB5×5(h + f0) + repeat(x, s²)), 0, 1).

    `two_step_shuffle` (x4 only) upsamples with two PixelShuffle(2) as the authors' code does, instead of one
    PixelShuffle(4); the deploy form can take either layout exactly.
    """

    deploy_forms = {'plain': DeployForm('SESRInference', same_output)}

    def __init__(self, num_in_ch: int, num_out_ch: int, upscale: int, m: int, int_features: int, feature_size: int,
                 linear_block_type: str = 'collapsed', relu_act: bool = False, two_step_shuffle: bool = False) -> None:
        super().__init__()
        if num_in_ch != num_out_ch:
            raise UserError(f'SESR repeats its input: num_in_ch must equal num_out_ch ({num_in_ch} != {num_out_ch})')
        self.upscale = upscale
        self.two_step_shuffle = two_step_shuffle
        self.steps = shuffle_steps(upscale, two_step_shuffle)
        self.first = LinearBlock(num_in_ch, int_features, 5, feature_size, block_type=linear_block_type)
        self.blocks = nn.ModuleList(LinearBlock(int_features, int_features, 3, feature_size, residual=True,
                                                block_type=linear_block_type) for _ in range(m))
        self.acts = nn.ModuleList(_activation(int_features, relu_act) for _ in range(m))
        self.last = LinearBlock(int_features, num_out_ch * upscale * upscale, 5, feature_size,
                                block_type=linear_block_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _sesr_forward(x, self.first, self.blocks, self.acts, self.last, self.steps)

    @torch.no_grad()
    def to_deploy(self, kind: str = 'plain', two_step_shuffle: bool | None = None) -> nn.Module:
        """Every linear block collapsed into one conv (biases kept); `two_step_shuffle`: the x4 PixelShuffle
        layout of the result (None keeps this network's)."""
        convs = [block.fold() for block in (self.first, *self.blocks, self.last)]
        args = {k: v for k, v in self.init_args.items() if k not in ('feature_size', 'linear_block_type')}
        layout = self.two_step_shuffle if two_step_shuffle is None else two_step_shuffle
        return _collapsed_sesr(convs, self.acts, args, layout)


@ARCH_REGISTRY.register()
class SESRInference(SRNetwork):
    """Collapsed SESR: a 5×5 conv, m × (3×3 conv + act), a 5×5 conv; the same residuals, PixelShuffle and clamp.

    Its layout option `two_step_shuffle` moves an x4 model between one PixelShuffle(4) and two PixelShuffle(2),
    which only reorders the last conv's output channels (core.reparam.shuffle).
    """

    layout_options = ('two_step_shuffle',)

    def __init__(self, num_in_ch: int, num_out_ch: int, upscale: int, m: int, int_features: int,
                 relu_act: bool = False, two_step_shuffle: bool = False) -> None:
        super().__init__()
        self.upscale = upscale
        self.two_step_shuffle = two_step_shuffle
        self.steps = shuffle_steps(upscale, two_step_shuffle)
        self.first = nn.Conv2d(num_in_ch, int_features, 5, padding=2)
        self.blocks = nn.ModuleList(nn.Conv2d(int_features, int_features, 3, padding=1) for _ in range(m))
        self.acts = nn.ModuleList(_activation(int_features, relu_act) for _ in range(m))
        self.last = nn.Conv2d(int_features, num_out_ch * upscale * upscale, 5, padding=2)

    @property
    def convs(self) -> list[nn.Conv2d]:
        return [self.first, *self.blocks, self.last]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _sesr_forward(x, self.first, self.blocks, self.acts, self.last, self.steps)

    @torch.no_grad()
    def with_layout(self, two_step_shuffle: bool) -> nn.Module:
        """The same function with the x4 PixelShuffle layout `two_step_shuffle`."""
        return _collapsed_sesr([conv_params(conv) for conv in self.convs], self.acts, self.init_args,
                               two_step_shuffle)


def _collapsed_sesr(convs: list[Conv], acts: nn.ModuleList, args: dict, two_step_shuffle: bool) -> SESRInference:
    """SESRInference holding `convs` and `acts` (laid out as `args['two_step_shuffle']` says), in the x4
    layout `two_step_shuffle`: moving between layouts reorders the last conv's output channels only."""
    if two_step_shuffle != args['two_step_shuffle']:
        relayout = to_stepwise_shuffle if two_step_shuffle else from_stepwise_shuffle
        convs = [*convs[:-1], relayout(convs[-1], (2, 2))]
    plain = built_like(SESRInference, convs[0][0], **{**args, 'two_step_shuffle': two_step_shuffle})
    load_convs(plain.convs, convs)
    plain.acts.load_state_dict(acts.state_dict())
    return plain


# Raw layouts. Weights cannot tell the x4 PixelShuffle layouts apart: raw files are read as one PixelShuffle(4).

@raw_layout('SESR', required=('first.expand.weight', 'last.squeeze.weight'))
def sesr_args(state: State) -> dict | None:
    expand = state['first.expand.weight']
    num_in_ch, feature_size = expand.shape[1], expand.shape[0]
    m = count_indexed(state, 'blocks.{}.expand.weight')
    upscale = scale_from_channels(state['last.squeeze.weight'].shape[0], num_in_ch)
    return None if upscale is None else dict(
        num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=upscale, m=m,
        int_features=state['first.squeeze.weight'].shape[0], feature_size=feature_size,
        relu_act=m > 0 and 'acts.0.weight' not in state)


@raw_layout('SESRInference', required=('first.weight', 'blocks.0.weight', 'last.weight'))
def sesr_inference_args(state: State) -> dict | None:
    num_in_ch = state['first.weight'].shape[1]
    upscale = scale_from_channels(state['last.weight'].shape[0], num_in_ch)
    return None if upscale is None else dict(
        num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=upscale, m=count_indexed(state, 'blocks.{}.weight'),
        int_features=state['first.weight'].shape[0], relu_act='acts.0.weight' not in state)
