"""ETDS: the dual-stream training form, its plain inference form, and the paper's ablations.

Key names and constructor arguments match the official checkpoints, which load with strict=True.
The training form has a backbone stream (C_b = num_feat - num_residual_feat channels) and a residual
stream (C_r = num_residual_feat) that starts as exact nearest-neighbour upsampling. The converter in
`core.converters.etds` merges both streams into `ETDSForInference`, a conv+ReLU chain of num_feat channels.
"""

from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from core.archs.shared import plain_last_width
from core.errors import UserError
from core.reparam import identity_kernel


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


class _DualStreamETDS(nn.Module):
    """Shared body of ETDS and its residual ablations; subclasses choose the cross connections."""

    has_residual_to_backbone = True
    has_backbone_to_residual = False

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
        """Return (super-resolved image, residual-stream image); both are unclamped."""
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
class ETDSOnlyET(nn.Module):
    """Ablation with only the backbone (C_b channels) and a repeated-input shortcut before PixelShuffle."""

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
        shortcut = torch.repeat_interleave(x, self.upscale * self.upscale, dim=1)
        return self.pixel_shuffle(self.conv_last(feat) + shortcut)


@ARCH_REGISTRY.register()
class ETDSForInference(nn.Module):
    """The plain deployable form: conv+ReLU only, with the output clamp folded into conv_last and conv_clip."""

    def __init__(self, num_in_ch: int, num_out_ch: int, upscale: int, num_block: int, num_feat: int,
                 num_residual_feat: int) -> None:
        super().__init__()
        self.upscale = upscale
        self.num_out_ch = num_out_ch
        width = plain_last_width(num_out_ch, upscale)
        self.conv_first = _conv3x3(num_in_ch, num_feat)
        self.backbone_convs = nn.ModuleList(_conv3x3(num_feat, num_feat) for _ in range(num_block))
        self.conv_last = _conv3x3(num_feat, width)
        self.conv_clip = nn.Conv2d(width, width, 1)
        self.pixel_shuffle = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.relu(self.conv_first(x))
        for conv in self.backbone_convs:
            feat = F.relu(conv(feat))
        out = F.relu(self.conv_clip(F.relu(self.conv_last(feat))))
        return self.pixel_shuffle(out[:, :self.num_out_ch * self.upscale * self.upscale])
