"""ECBSR: edge-oriented convolution blocks (training), their folded plain form ECBSRT, and the ET form ECBSRET.

Key names match the official checkpoints. basicsr ships its own `ECBSR` (with other arguments), so ours
is registered under basicsr's suffix convention as `ECBSR_mobilesr`; the Python class keeps its name.
Collapsed training (`collapsed: true`) folds every ECB into one 3×3 conv at each step with the converter's
own differentiable fold, so a step costs one conv per block while gradients still reach every branch.
"""

from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from core.archs.detection import State, last_index, raw_layout, scale_from_channels, scale_from_plain_width
from core.archs.network import DeployForm, built_like, clamped_output, conv_params, load_convs, same_output
from core.archs.shared import RepeatShortcutNet, TrimmedShuffleNet, et_width, plain_last_width
from core.errors import UserError
from core.reparam import (
    Conv,
    compose_1x1_depthwise,
    compose_1x1_kxk,
    fold_carried_input,
    identity_kernel,
    laplacian,
    sobel_x,
    sobel_y,
    sum_convs,
)

ACT_TYPES = ('prelu', 'relu', 'rrelu', 'softplus', 'linear')
EDGE_MASKS = {'conv1x1-sobelx': sobel_x, 'conv1x1-sobely': sobel_y, 'conv1x1-laplacian': laplacian}


def make_activation(act_type: str, channels: int) -> nn.Module:
    """The activations ECBSR offers; PReLU is per channel."""
    if act_type == 'prelu':
        return nn.PReLU(num_parameters=channels)
    if act_type == 'relu':
        return nn.ReLU(inplace=False)
    if act_type == 'rrelu':
        return nn.RReLU(lower=-0.05, upper=0.05)
    if act_type == 'softplus':
        return nn.Softplus()
    if act_type == 'linear':
        return nn.Identity()
    raise UserError(f"unknown act_type '{act_type}'; choose one of {', '.join(ACT_TYPES)}")


def pad_with_bias(y: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Pad by one pixel filled with the 1×1 conv's bias: what that conv outputs on the zero-padded input."""
    return F.pad(y - bias.view(1, -1, 1, 1), (1, 1, 1, 1)) + bias.view(1, -1, 1, 1)


class SeqConv3x3(nn.Module):
    """A 1×1 conv followed by a 3×3 conv (dense, or a frozen edge mask × learnable per-channel scale)."""

    def __init__(self, seq_type: str, in_channels: int, out_channels: int, depth_multiplier: float = 1.0) -> None:
        super().__init__()
        self.seq_type = seq_type
        if seq_type == 'conv1x1-conv3x3':
            mid = int(out_channels * depth_multiplier)
            conv0, conv1 = nn.Conv2d(in_channels, mid, 1), nn.Conv2d(mid, out_channels, 3)
            self.k0, self.b0 = conv0.weight, conv0.bias
            self.k1, self.b1 = conv1.weight, conv1.bias
        elif seq_type in EDGE_MASKS:
            conv0 = nn.Conv2d(in_channels, out_channels, 1)
            self.k0, self.b0 = conv0.weight, conv0.bias
            self.scale = nn.Parameter(torch.randn(out_channels, 1, 1, 1) * 1e-3)
            self.bias = nn.Parameter(torch.randn(out_channels) * 1e-3)
            mask = EDGE_MASKS[seq_type]().expand(out_channels, 1, 3, 3).clone()
            self.mask = nn.Parameter(mask, requires_grad=False)  # a frozen Parameter, as in the official keys
        else:
            raise ValueError(f'unknown seq_type {seq_type}')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = pad_with_bias(F.conv2d(x, self.k0, self.b0), self.b0)
        if self.seq_type == 'conv1x1-conv3x3':
            return F.conv2d(y, self.k1, self.b1)
        return F.conv2d(y, self.scale * self.mask, self.bias, groups=self.bias.shape[0])

    def fold(self) -> Conv:
        """The one 3×3 conv (zero padding 1) this branch equals, thanks to the bias padding."""
        if self.seq_type == 'conv1x1-conv3x3':
            return compose_1x1_kxk((self.k0, self.b0), (self.k1, self.b1))
        return compose_1x1_depthwise((self.k0, self.b0), (self.scale * self.mask, self.bias))


class ECB(nn.Module):
    """Edge-oriented convolution block: conv3×3 + 1×1→3×3 + 1×1→Sobel-x/Sobel-y/Laplacian (+ identity), then act."""

    def __init__(self, inp_planes: int, out_planes: int, depth_multiplier: float, act_type: str = 'prelu',
                 with_idt: bool = False, collapsed: bool = False) -> None:
        super().__init__()
        self.with_idt = bool(with_idt) and inp_planes == out_planes
        self.collapsed = collapsed
        self.conv3x3 = nn.Conv2d(inp_planes, out_planes, 3, padding=1)
        self.conv1x1_3x3 = SeqConv3x3('conv1x1-conv3x3', inp_planes, out_planes, depth_multiplier)
        self.conv1x1_sbx = SeqConv3x3('conv1x1-sobelx', inp_planes, out_planes)
        self.conv1x1_sby = SeqConv3x3('conv1x1-sobely', inp_planes, out_planes)
        self.conv1x1_lpl = SeqConv3x3('conv1x1-laplacian', inp_planes, out_planes)
        self.act = make_activation(act_type, out_planes)

    def fold(self) -> Conv:
        """The one 3×3 conv (zero padding 1) equal to the five branches (and identity) before the activation."""
        convs = [(self.conv3x3.weight, self.conv3x3.bias)]
        convs += [branch.fold() for branch in (self.conv1x1_3x3, self.conv1x1_sbx, self.conv1x1_sby, self.conv1x1_lpl)]
        if self.with_idt:
            weight = self.conv3x3.weight
            convs.append((identity_kernel(weight.shape[0], 3, weight.dtype).to(weight.device),
                          torch.zeros_like(self.conv3x3.bias)))
        return sum_convs(*convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.collapsed:
            weight, bias = self.fold()
            y = F.conv2d(x, weight, bias, padding=1)
        else:
            y = self.conv3x3(x) + self.conv1x1_3x3(x) + self.conv1x1_sbx(x) + self.conv1x1_sby(x) + self.conv1x1_lpl(x)
            if self.with_idt:
                y = y + x
        return self.act(y)


@ARCH_REGISTRY.register(suffix='mobilesr')
class ECBSR(RepeatShortcutNet):
    """ECBSR training form: ECB(in→C), num_block × ECB(C→C), ECB(C→out·s², linear); depth multiplier 2."""

    deploy_forms = {'plain': DeployForm('ECBSRT', same_output), 'et': DeployForm('ECBSRET', clamped_output)}

    def __init__(self, num_in_ch: int, num_out_ch: int, upscale: int, num_block: int, num_feat: int,
                 act_type: str = 'prelu', with_idt: bool = False, collapsed: bool = False) -> None:
        super().__init__()
        if num_in_ch != num_out_ch:
            raise UserError(f'ECBSR repeats its input: num_in_ch must equal num_out_ch ({num_in_ch} != {num_out_ch})')
        self.upscale = upscale
        blocks = [ECB(num_in_ch, num_feat, 2.0, act_type, with_idt, collapsed)]
        blocks += [ECB(num_feat, num_feat, 2.0, act_type, with_idt, collapsed) for _ in range(num_block)]
        blocks.append(ECB(num_feat, num_out_ch * upscale * upscale, 2.0, 'linear', with_idt, collapsed))
        self.backbone = nn.Sequential(*blocks)

    @torch.no_grad()
    def to_deploy(self, kind: str = 'et') -> nn.Module:
        """plain: every ECB's five branches (and identity) as one 3×3 conv (ECBSRT); et: then ECBSRT's ET form."""
        folded = [block.fold() for block in self.backbone]
        args = {k: v for k, v in self.init_args.items() if k not in ('with_idt', 'collapsed')}
        plain = built_like(ECBSRT, folded[0][0], **args)
        load_convs([layer[0] for layer in plain.backbone], folded)
        for block, layer in zip(self.backbone[:-1], plain.backbone[:-1], strict=True):
            layer[1].load_state_dict(block.act.state_dict())
        return plain if kind == 'plain' else plain.to_deploy('et')


def _conv_act(in_ch: int, out_ch: int, act: nn.Module | None, kernel_size: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


def prelu_slopes(act: nn.Module, channels: int, like: torch.Tensor) -> torch.Tensor:
    """The PReLU slopes equal to `act` (in eval mode for RReLU); an activation without them is refused."""
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


@ARCH_REGISTRY.register()
class ECBSRT(RepeatShortcutNet):
    """The folded ECBSR: (Conv3×3 + act) × (num_block + 1), then Conv3×3, with the same shortcut."""

    deploy_forms = {'et': DeployForm('ECBSRET', clamped_output)}

    def __init__(self, num_in_ch: int, num_out_ch: int, upscale: int, num_block: int, num_feat: int,
                 act_type: str = 'prelu') -> None:
        super().__init__()
        self.upscale = upscale
        layers = [_conv_act(num_in_ch, num_feat, make_activation(act_type, num_feat))]
        layers += [_conv_act(num_feat, num_feat, make_activation(act_type, num_feat)) for _ in range(num_block)]
        layers.append(_conv_act(num_feat, num_out_ch * upscale * upscale, None))
        self.backbone = nn.Sequential(*layers)

    @torch.no_grad()
    def to_deploy(self, kind: str = 'et') -> nn.Module:
        """The input carried through the hidden layers (PReLU slope 0 on its channels), shortcut and clamp folded."""
        layers = list(self.backbone)
        convs = [conv_params(layer[0]) for layer in layers]
        num_feat, num_in_ch = convs[0][0].shape[0], convs[0][0].shape[1]
        slopes = [prelu_slopes(layer[1], num_feat, convs[0][0]) for layer in layers[:-1]]
        et = built_like(ECBSRET, convs[0][0], **{**self.init_args, 'act_type': 'prelu'})
        load_convs([layer[0] for layer in et.backbone],
                   fold_carried_input(convs[:-1], convs[-1], num_in_ch, self.upscale, multiple=4))
        for layer, slope in zip(et.backbone, slopes, strict=False):  # the carried and padding channels: slope 0
            layer[1].weight.zero_()[:num_feat] = slope
        return et


ET_ACT_TYPES = ('prelu', 'relu', 'rrelu', 'linear')  # the identity on x ≥ 0, so the carried image passes


@ARCH_REGISTRY.register()
class ECBSRET(TrimmedShuffleNet):
    """The ET form of ECBSR: conv+act at width C+in (padded to 4), the input carried inside, clamp folded.

    `act_type` is the upstream argument; the converter writes PReLU, which expresses every foldable activation.
    """

    def __init__(self, num_in_ch: int, num_out_ch: int, upscale: int, num_block: int, num_feat: int,
                 act_type: str = 'prelu') -> None:
        super().__init__()
        if act_type not in ET_ACT_TYPES:
            raise UserError(f"ECBSRET carries the image through its activations, so act_type must leave x >= 0 "
                            f"unchanged ({', '.join(ET_ACT_TYPES)}), not '{act_type}'")
        self.upscale, self.out_channels = upscale, num_out_ch * upscale * upscale
        width, last = et_width(num_feat, num_in_ch), plain_last_width(num_out_ch, upscale)
        layers = [_conv_act(num_in_ch, width, make_activation(act_type, width))]
        layers += [_conv_act(width, width, make_activation(act_type, width)) for _ in range(num_block)]
        layers += [_conv_act(width, last, nn.ReLU()), _conv_act(last, last, nn.ReLU(), kernel_size=1)]
        self.backbone = nn.Sequential(*layers)


# Raw layouts: ECBSR's blocks are backbone.k.conv3x3.* and friends; ECBSRT and ECBSRET are backbone.k.0.*,
# with a PReLU backbone.k.1.weight unless act_type is relu.

@raw_layout('ECBSR_mobilesr', required=('backbone.0.conv3x3.weight',))
def ecbsr_args(state: State) -> dict | None:
    last = last_index(state, 'backbone.{}.conv3x3.weight')
    first = state['backbone.0.conv3x3.weight']
    scale = scale_from_channels(state[f'backbone.{last}.conv3x3.weight'].shape[0], first.shape[1])
    return None if scale is None else dict(
        num_in_ch=first.shape[1], num_out_ch=first.shape[1], upscale=scale, num_block=last - 1,
        num_feat=first.shape[0], act_type='prelu' if 'backbone.0.act.weight' in state else 'relu')


_PLAIN_KEYS = ('backbone.0.0.weight', 'backbone.1.0.weight')


@raw_layout('ECBSRET', required=_PLAIN_KEYS)
def ecbsret_args(state: State) -> dict | None:
    last = last_index(state, 'backbone.{}.0.weight')
    clip = state[f'backbone.{last}.0.weight']
    first = state['backbone.0.0.weight']
    num_in_ch = first.shape[1]
    scale = scale_from_plain_width(clip.shape[0], num_in_ch) if clip.shape[-1] == 1 else None
    if scale is None:
        return None
    args = dict(num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=scale, num_block=last - 2,
                num_feat=first.shape[0] - num_in_ch - 1)
    return args if 'backbone.0.1.weight' in state else {**args, 'act_type': 'relu'}


@raw_layout('ECBSRT', required=_PLAIN_KEYS)
def ecbsrt_args(state: State) -> dict | None:
    last = last_index(state, 'backbone.{}.0.weight')
    first = state['backbone.0.0.weight']
    num_in_ch = first.shape[1]
    scale = scale_from_channels(state[f'backbone.{last}.0.weight'].shape[0], num_in_ch)
    return None if scale is None else dict(
        num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=scale, num_block=last - 1, num_feat=first.shape[0],
        act_type='prelu' if 'backbone.0.1.weight' in state else 'relu')
