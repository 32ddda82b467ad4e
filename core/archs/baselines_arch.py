"""Baselines ETDS is compared against: ESPCN, FSRCNN and a plain conv+ReLU net (official key layouts)."""

from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from core.archs.detection import State, count_indexed, raw_layout, scale_from_channels
from core.archs.etds_arch import SINGLE_STREAM_KEYS
from core.archs.network import SRNetwork


@ARCH_REGISTRY.register()
class ESPCN(SRNetwork):
    """conv5×5→64 + tanh, conv3×3→32 + tanh, conv3×3→colors·s², PixelShuffle, sigmoid."""

    def __init__(self, colors: int, upscale: int) -> None:
        super().__init__()
        self.upscale = upscale
        self.conv1 = nn.Conv2d(colors, 64, 5, padding=2)
        self.conv2 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, colors * upscale * upscale, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.conv2(torch.tanh(self.conv1(x))))
        return torch.sigmoid(F.pixel_shuffle(self.conv3(x), self.upscale))


@ARCH_REGISTRY.register()
class FSRCNN(SRNetwork):
    """Feature extraction, shrinking, 4 mapping layers, expanding (PReLU each), then a stride-s deconvolution."""

    def __init__(self, upscale: int) -> None:
        super().__init__()
        self.first_part = nn.Sequential(nn.Conv2d(3, 56, 5, padding=2), nn.PReLU(56))
        mid: list[nn.Module] = [nn.Conv2d(56, 12, 1), nn.PReLU(12)]
        for _ in range(4):
            mid += [nn.Conv2d(12, 12, 3, padding=1), nn.PReLU(12)]
        mid += [nn.Conv2d(12, 56, 1), nn.PReLU(56)]
        self.mid_part = nn.Sequential(*mid)
        self.last_part = nn.ConvTranspose2d(56, 3, 9, stride=upscale, padding=4, output_padding=upscale - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_part(self.mid_part(self.first_part(x)))


@ARCH_REGISTRY.register()
class Plain(SRNetwork):
    """conv+ReLU stack, conv_last, PixelShuffle: what ETDS deploys as, trained directly and without a residual."""

    def __init__(self, num_in_ch: int, num_out_ch: int, upscale: int, num_block: int, num_feat: int) -> None:
        super().__init__()
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, padding=1)
        self.backbone_convs = nn.ModuleList(nn.Conv2d(num_feat, num_feat, 3, padding=1) for _ in range(num_block))
        self.conv_last = nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv_first(x))
        for conv in self.backbone_convs:
            x = F.relu(conv(x))
        return F.pixel_shuffle(self.conv_last(x), self.upscale)


@raw_layout('ESPCN', required=('conv1.weight', 'conv3.weight'))
def espcn_args(state: State) -> dict | None:
    colors = state['conv1.weight'].shape[1]
    upscale = scale_from_channels(state['conv3.weight'].shape[0], colors)
    return None if upscale is None else {'colors': colors, 'upscale': upscale}


@raw_layout('FSRCNN', required=('first_part.0.weight', 'last_part.weight'))
def fsrcnn_args(state: State) -> dict:
    return {}  # the scale is the deconvolution's stride, which the weights do not hold


@raw_layout('Plain', **SINGLE_STREAM_KEYS)  # ETDSOnlyET's keys too: DETECTION_ORDER refuses to guess between them
def plain_args(state: State) -> dict | None:
    num_in_ch = state['conv_first.weight'].shape[1]
    upscale = scale_from_channels(state['conv_last.weight'].shape[0], num_in_ch)
    return None if upscale is None else dict(
        num_in_ch=num_in_ch, num_out_ch=num_in_ch, upscale=upscale,
        num_block=count_indexed(state, 'backbone_convs.{}.weight'), num_feat=state['conv_first.weight'].shape[0])
