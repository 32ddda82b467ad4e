"""ETDS: the dual-stream training form, its plain inference form, and the paper's ablations.

Key names and constructor arguments match the official checkpoints, which load with strict=True.
The training form has a backbone stream (C_b = num_feat - num_residual_feat channels) and a residual
stream (C_r = num_residual_feat) that starts as exact nearest-neighbour upsampling. `to_deploy` merges both
streams into `ETDSForInference`, a conv+ReLU chain of num_feat channels (the paper's Equivalent Transformation).
The same merge, left differentiable, is how the training form runs by default (`fused`): one conv per layer.
"""

from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from core.archs.detection import State, count_indexed, raw_layout, scale_from_channels, scale_from_plain_width
from core.archs.network import DeployForm, SRNetwork, built_like, clamped_output, conv_params, load_convs
from core.archs.shared import et_width, plain_last_width, repeat_channels
from core.errors import UserError
from core.reparam import (
    clamp_tail,
    fold_carried_input,
    identity_kernel,
    join_inputs,
    merge_dual_stream,
    pad_out_channels,
    stack_outputs,
)

ET_FORM = DeployForm('ETDSForInference', clamped_output)


def _live(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    return conv.weight, conv.bias


def _conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, 1, 1)


def _check_sizes(num_in_ch: int, num_out_ch: int, upscale: int, num_block: int, num_feat: int,
                 num_residual_feat: int) -> None:
    if upscale < 1 or num_block < 0:
        raise UserError(f'ETDS needs upscale >= 1 and num_block >= 0, got upscale={upscale}, num_block={num_block}')
    if not num_in_ch <= num_residual_feat < num_feat:
        raise UserError(f'ETDS needs num_in_ch <= num_residual_feat < num_feat (got {num_in_ch}, '
                        f'{num_residual_feat}, {num_feat}); the residual stream must carry the whole image')
    if num_out_ch > num_residual_feat:
        raise UserError(f'ETDS needs num_out_ch <= num_residual_feat (got {num_out_ch} > {num_residual_feat})')


class _DualStreamETDS(SRNetwork):
    """Shared body of ETDS and its residual ablations; subclasses choose the cross connections."""

    deploy_forms = {'et': ET_FORM, 'plain': ET_FORM}  # the plain form is the ET form: ReLU chain, clamp folded
    has_residual_to_backbone = True
    has_backbone_to_residual = False
    fused = True  # train as one conv per layer (same function and gradients); False runs the two streams

    def __init__(self, num_in_ch: int, num_out_ch: int, upscale: int, num_block: int, num_feat: int,
                 num_residual_feat: int) -> None:
        super().__init__()
        _check_sizes(num_in_ch, num_out_ch, upscale, num_block, num_feat, num_residual_feat)
        self.upscale = upscale
        backbone_feat = num_feat - num_residual_feat
        self.conv_first = _conv3x3(num_in_ch, backbone_feat)
        self.conv_residual_first = _conv3x3(num_in_ch, num_residual_feat)
        self.backbone_convs = nn.ModuleList(_conv3x3(backbone_feat, backbone_feat) for _ in range(num_block))
        self.residual_convs = nn.ModuleList(_conv3x3(num_residual_feat, num_residual_feat)
                                            for _ in range(num_block))
        if self.has_residual_to_backbone:
            self.add_residual_convs = nn.ModuleList(_conv3x3(num_residual_feat, backbone_feat)
                                                    for _ in range(num_block))
        if self.has_backbone_to_residual:
            self.advanced_residual_convs = nn.ModuleList(_conv3x3(backbone_feat, num_residual_feat)
                                                         for _ in range(num_block))
        self.conv_last = _conv3x3(backbone_feat, num_out_ch * upscale * upscale)
        self.conv_residual_last = _conv3x3(num_residual_feat, num_out_ch * upscale * upscale)
        self.pixel_shuffle = nn.PixelShuffle(upscale)
        self.init_residual_as_nearest_upsampling()

    @torch.no_grad()
    def init_residual_as_nearest_upsampling(self) -> None:
        """Make the residual stream compute exact nearest-neighbour upsampling, with no cross-talk."""
        num_in_ch = self.conv_residual_first.in_channels
        first = torch.zeros_like(self.conv_residual_first.weight)
        first[:num_in_ch] = identity_kernel(num_in_ch)
        self.conv_residual_first.weight.copy_(first)
        for conv in self.residual_convs:
            conv.weight.copy_(identity_kernel(conv.in_channels))
        zeroed = [self.conv_residual_first, *self.residual_convs, self.conv_residual_last]
        zeroed += list(getattr(self, 'add_residual_convs', []))
        zeroed += list(getattr(self, 'advanced_residual_convs', []))
        for conv in zeroed:
            conv.bias.zero_()
        for conv in [*getattr(self, 'add_residual_convs', []), *getattr(self, 'advanced_residual_convs', [])]:
            conv.weight.zero_()
        last = torch.zeros_like(self.conv_residual_last.weight)
        s2 = self.upscale * self.upscale
        num_out_ch = last.shape[0] // s2
        for c in range(num_out_ch):
            last[c * s2:(c + 1) * s2, c, 1, 1] = 1
        self.conv_residual_last.weight.copy_(last)

    def residual_stream_parameters(self) -> list[nn.Parameter]:
        """Parameters of the residual stream and of the connections that read from it (K_r and K_r2b)."""
        return [p for name, p in self.named_parameters() if 'residual' in name]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (super-resolved image, residual-stream image); both are unclamped.

        `fused` (the default) runs the two streams as one conv per layer; the parameters, and so the
        checkpoints, are the dual-stream ones either way.
        """
        return self._forward_fused(x) if self.fused else self._forward_streams(x)

    def fused_convs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The layers as single convs of [backbone; residual] (block-triangular for ETDS), built from the
        parameters without detaching, so gradients reach the dual-stream weights exactly as in the two streams.

        The last, conv_last(x) + conv_residual_last(r), is one conv of [x; r] too; the residual image for the
        interpolation loss is conv_residual_last(r) alone (3 input channels: cheaper than a zero block).
        """
        first = stack_outputs(_live(self.conv_first), _live(self.conv_residual_first))
        blocks = []
        for i, (backbone, residual) in enumerate(zip(self.backbone_convs, self.residual_convs, strict=True)):
            to_backbone = _live(self.add_residual_convs[i]) if self.has_residual_to_backbone else None
            to_residual = _live(self.advanced_residual_convs[i]) if self.has_backbone_to_residual else None
            blocks.append(merge_dual_stream(_live(backbone), _live(residual), to_backbone, to_residual))
        return [first, *blocks, join_inputs(_live(self.conv_last), _live(self.conv_residual_last))]

    def _forward_fused(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        *hidden, (last_weight, last_bias) = self.fused_convs()
        for weight, bias in hidden:
            x = F.relu(F.conv2d(x, weight, bias, padding=1))
        sr = F.conv2d(x, last_weight, last_bias, padding=1)
        residual = x[:, self.conv_first.out_channels:]
        res_out = self.conv_residual_last(residual)
        return self.pixel_shuffle(torch.cat([sr, res_out], 1)).split(sr.shape[1] // self.upscale**2, dim=1)

    def _forward_streams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = F.relu(self.conv_first(x))
        res = F.relu(self.conv_residual_first(x))
        for i, backbone_conv in enumerate(self.backbone_convs):
            new_feat = backbone_conv(feat)
            if self.has_residual_to_backbone:
                new_feat = new_feat + self.add_residual_convs[i](res)
            new_res = self.residual_convs[i](res)
            if self.has_backbone_to_residual:
                new_res = new_res + self.advanced_residual_convs[i](feat)
            feat, res = F.relu(new_feat), F.relu(new_res)
        res_out = self.conv_residual_last(res)
        out = self.conv_last(feat) + res_out
        return self.pixel_shuffle(out), self.pixel_shuffle(res_out)

    @torch.no_grad()
    def to_deploy(self, kind: str = 'et') -> nn.Module:
        """One stream of num_feat channels with block kernels [[B, A], [D, R]] (A, D zero when absent), the
        output convs joined, and the clamp folded into conv_last and a 1×1 clip conv: the fused layers, fixed."""
        *layers, last = self.fused_convs()
        plain = built_like(ETDSForInference, layers[0][0], **self.init_args)
        load_convs(plain.convs, [*layers, *clamp_tail(pad_out_channels(last, 4))])
        return plain


@ARCH_REGISTRY.register()
class ETDS(_DualStreamETDS):
    """The ETDS training form: x_k = ReLU(B_k∗x + A_k∗r), r_k = ReLU(R_k∗r)."""


@ARCH_REGISTRY.register()
class ETDSAblationResidual(_DualStreamETDS):
    """Ablation without the residual→backbone connections A_k."""

    has_residual_to_backbone = False


@ARCH_REGISTRY.register()
class ETDSAblationAdvancedResidual(_DualStreamETDS):
    """Ablation that also feeds the backbone into the residual stream: r_k = ReLU(R_k∗r + D_k∗x)."""

    has_backbone_to_residual = True


@ARCH_REGISTRY.register()
class ETDSOnlyET(SRNetwork):
    """Ablation with only the backbone (C_b channels) and a repeated-input shortcut before PixelShuffle."""

    deploy_forms = {'et': ET_FORM}

    def __init__(self, num_in_ch: int, num_out_ch: int, upscale: int, num_block: int, num_feat: int,
                 num_residual_feat: int) -> None:
        super().__init__()
        if num_in_ch != num_out_ch:
            raise UserError(f'ETDSOnlyET repeats its input, so num_in_ch must equal num_out_ch '
                            f'(got {num_in_ch} and {num_out_ch})')
        backbone_feat = num_feat - num_residual_feat
        if backbone_feat < 1:
            raise UserError(f'ETDSOnlyET needs num_feat > num_residual_feat (got {num_feat}, {num_residual_feat})')
        self.upscale = upscale
        self.conv_first = _conv3x3(num_in_ch, backbone_feat)
        self.backbone_convs = nn.ModuleList(_conv3x3(backbone_feat, backbone_feat) for _ in range(num_block))
        self.conv_last = _conv3x3(backbone_feat, num_out_ch * upscale * upscale)
        self.pixel_shuffle = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.relu(self.conv_first(x))
        for conv in self.backbone_convs:
            feat = F.relu(conv(feat))
        shortcut = repeat_channels(x, self.upscale * self.upscale)
        return self.pixel_shuffle(self.conv_last(feat) + shortcut)

    @torch.no_grad()
    def to_deploy(self, kind: str = 'et') -> nn.Module:
        """The input carried through the backbone in extra channels (ECBSR's and ABPN's fold), so the plain
        form is ETDSForInference with C_b + num_in_ch channels rounded up to 4."""
        convs = [conv_params(c) for c in (self.conv_first, *self.backbone_convs, self.conv_last)]
        backbone_feat, num_in_ch = convs[0][0].shape[:2]
        width = et_width(backbone_feat, num_in_ch)
        args = {**self.init_args, 'num_feat': width, 'num_residual_feat': width - backbone_feat}
        plain = built_like(ETDSForInference, convs[0][0], **args)
        load_convs(plain.convs, fold_carried_input(convs[:-1], convs[-1], num_in_ch, self.upscale, multiple=4))
        return plain


@ARCH_REGISTRY.register()
class ETDSForInference(SRNetwork):
    """The plain deployable form: conv+ReLU only, with the output clamp folded into conv_last and conv_clip.

    `num_residual_feat` names how many of the num_feat channels were the residual stream; the merged network
    computes the same either way, so it is optional (upstream network_g blocks give it, raw files cannot).
    """

    def __init__(self, num_in_ch: int, num_out_ch: int, upscale: int, num_block: int, num_feat: int,
                 num_residual_feat: int | None = None) -> None:
        super().__init__()
        self.upscale = upscale
        self.num_out_ch = num_out_ch
        width = plain_last_width(num_out_ch, upscale)
        self.conv_first = _conv3x3(num_in_ch, num_feat)
        self.backbone_convs = nn.ModuleList(_conv3x3(num_feat, num_feat) for _ in range(num_block))
        self.conv_last = _conv3x3(num_feat, width)
        self.conv_clip = nn.Conv2d(width, width, 1)
        self.pixel_shuffle = nn.PixelShuffle(upscale)

    @property
    def convs(self) -> list[nn.Conv2d]:
        return [self.conv_first, *self.backbone_convs, self.conv_last, self.conv_clip]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.relu(self.conv_first(x))
        for conv in self.backbone_convs:
            feat = F.relu(conv(feat))
        out = F.relu(self.conv_clip(F.relu(self.conv_last(feat))))
        channels = self.num_out_ch * self.upscale * self.upscale
        if out.shape[1] != channels:  # only when the width was padded to 4: a no-op slice splits exported graphs
            out = out[:, :channels]
        return self.pixel_shuffle(out)


# Raw layouts. The three dual-stream forms differ only in their cross connections; the plain forms by conv_clip.
_DUAL_KEYS = ('conv_first.weight', 'conv_residual_first.weight')


def dual_stream_args(state: State) -> dict | None:
    """Output channels are taken equal to the input's; the stream widths add up to num_feat."""
    num_in_ch = state['conv_first.weight'].shape[1]
    backbone_feat, residual_feat = state['conv_first.weight'].shape[0], state['conv_residual_first.weight'].shape[0]
    upscale = scale_from_channels(state['conv_last.weight'].shape[0], num_in_ch)
    return None if upscale is None else dict(
        num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=upscale,
        num_block=count_indexed(state, 'backbone_convs.{}.weight'), num_feat=backbone_feat + residual_feat,
        num_residual_feat=residual_feat)


raw_layout('ETDSAblationAdvancedResidual', required=(*_DUAL_KEYS, 'advanced_residual_convs.0.weight'))(
    dual_stream_args)
raw_layout('ETDS', required=(*_DUAL_KEYS, 'add_residual_convs.0.weight'))(dual_stream_args)
raw_layout('ETDSAblationResidual', required=_DUAL_KEYS)(dual_stream_args)


@raw_layout('ETDSForInference', required=('conv_first.weight', 'conv_clip.weight'))
def for_inference_args(state: State) -> dict | None:
    """Every size is in the weights; num_residual_feat is merged away and changes nothing, so it is left out."""
    num_feat, num_in_ch = state['conv_first.weight'].shape[:2]
    upscale = scale_from_plain_width(state['conv_clip.weight'].shape[0], num_in_ch)
    return None if upscale is None else dict(num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=upscale,
                                             num_block=count_indexed(state, 'backbone_convs.{}.weight'),
                                             num_feat=num_feat)


SINGLE_STREAM_KEYS = dict(required=('conv_first.weight', 'conv_last.weight'),
                      absent=('conv_residual_first.weight', 'conv_clip.weight'))  # also Plain's, in baselines_arch


@raw_layout('ETDSOnlyET', **SINGLE_STREAM_KEYS)
def only_et_args(state: State) -> dict | None:
    """Only num_feat − num_residual_feat is in the weights, and only it changes the computation: the residual
    width is taken as the input's, as in the paper's configs."""
    backbone_feat, num_in_ch = state['conv_first.weight'].shape[:2]
    upscale = scale_from_channels(state['conv_last.weight'].shape[0], num_in_ch)
    return None if upscale is None else dict(
        num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=upscale,
        num_block=count_indexed(state, 'backbone_convs.{}.weight'), num_feat=backbone_feat + num_in_ch,
        num_residual_feat=num_in_ch)
