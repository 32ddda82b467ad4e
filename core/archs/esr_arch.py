"""edge-SR (eSR): one-layer super-resolution on the luminance channel, built from model ids.

Ids: eSR-MAX_s{S}_K{K}_C{C}, eSR-TM_s{S}_K{K}_C{C}, eSR-TR_s{S}_K{K}_C{C}, eSR-CNN_s{S}_C{C}_D{D}_S{S}.
The official weights are torch state_dicts named `{model_id}.model` with keys `filter.weight` (MAX/TM/TR)
or `filter.{0,2,4}` (CNN); core.convert.resolver builds the right model from the file name alone
(`model_id_from_path`, eSR's detection, declared here).
"""

from __future__ import annotations

import re
from os import path as osp

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from core.archs.network import SRNetwork
from core.errors import UserError

ONE_LAYER_ID = re.compile(r'eSR-(MAX|TM|TR)_s(\d+)_K(\d+)_C(\d+)')
CNN_ID = re.compile(r'eSR-CNN_s(\d+)_C(\d+)_D(\d+)_S(\d+)')
ID_FORMS = 'eSR-MAX_s{S}_K{K}_C{C}, eSR-TM_s{S}_K{K}_C{C}, eSR-TR_s{S}_K{K}_C{C} or eSR-CNN_s{S}_C{C}_D{D}_S{S}'


def parse_model_id(model_id: str) -> dict:
    """The architecture arguments a model id stands for (`variant`, `upscale`, ...)."""
    if match := ONE_LAYER_ID.fullmatch(model_id):
        variant, scale, kernel, channels = match.groups()
        return dict(variant=variant, upscale=int(scale), kernel_size=int(kernel), channels=int(channels))
    if match := CNN_ID.fullmatch(model_id):
        scale, channels, d, s = (int(v) for v in match.groups())
        return dict(variant='CNN', upscale=scale, channels=channels, d=d, s=s)
    raise UserError(f"'{model_id}' is not an eSR model id; use {ID_FORMS}")


def _init_filter(conv: nn.Conv2d) -> None:
    """Xavier-normal, with the centre tap 1 for a 1-channel input: training starts near the identity."""
    nn.init.xavier_normal_(conv.weight)
    if conv.in_channels == 1:
        with torch.no_grad():
            conv.weight[:, :, conv.kernel_size[0] // 2, conv.kernel_size[1] // 2] = 1.0
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def _weighted_sum(values: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    return (values * torch.softmax(scores, dim=1)).sum(dim=1, keepdim=True)


class _OneLayerESR(SRNetwork):
    """A single bias-free K×K conv on the Y channel, PixelShuffle, and a per-pixel reduction over C candidates."""

    parts = 1

    def __init__(self, upscale: int, kernel_size: int, channels: int) -> None:
        super().__init__()
        self.upscale, self.channels = upscale, channels
        self.filter = nn.Conv2d(1, self.parts * upscale * upscale * channels, kernel_size, padding=kernel_size // 2,
                                bias=False)
        _init_filter(self.filter)

    def candidates(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(F.pixel_shuffle(self.filter(x), self.upscale), self.channels, dim=1))


@ARCH_REGISTRY.register()
class EdgeSRMax(_OneLayerESR):
    """eSR-MAX: y = max_c PS(conv(x))_c."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.candidates(x)[0].amax(dim=1, keepdim=True)


@ARCH_REGISTRY.register()
class EdgeSRTM(_OneLayerESR):
    """eSR-TM (template matching): y = Σ_c V_c·softmax_c(Key)."""

    parts = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, key = self.candidates(x)
        return _weighted_sum(value, key)


@ARCH_REGISTRY.register()
class EdgeSRTR(_OneLayerESR):
    """eSR-TR (transformer-like): y = Σ_c V_c·softmax_c(Q⊙Key)."""

    parts = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, query, key = self.candidates(x)
        return _weighted_sum(value, query * key)


@ARCH_REGISTRY.register()
class EdgeSRCNN(SRNetwork):
    """eSR-CNN: conv5×5(1→D)+tanh, conv3×3(D→S)+tanh, conv3×3(S→2s²C, no bias), PS, y = Σ V·softmax(Key⊙Key)."""

    def __init__(self, upscale: int, channels: int, d: int, s: int) -> None:
        super().__init__()
        if d < 1 or s < 1:
            raise UserError(f'eSR-CNN needs D >= 1 and S >= 1 (got D={d}, S={s}); the original breaks at D=0')
        self.upscale, self.channels = upscale, channels
        self.filter = nn.Sequential(nn.Conv2d(1, d, 5, padding=2), nn.Tanh(), nn.Conv2d(d, s, 3, padding=1), nn.Tanh(),
                                    nn.Conv2d(s, 2 * upscale * upscale * channels, 3, padding=1, bias=False))
        for module in self.filter:
            if isinstance(module, nn.Conv2d):
                _init_filter(module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, key = torch.split(F.pixel_shuffle(self.filter(x), self.upscale), self.channels, dim=1)
        return _weighted_sum(value, key * key)


VARIANTS = {'MAX': EdgeSRMax, 'TM': EdgeSRTM, 'TR': EdgeSRTR, 'CNN': EdgeSRCNN}


@ARCH_REGISTRY.register()
def EdgeSR(model_id: str) -> nn.Module:  # noqa: N802  (a network type, named like the classes)
    """Build the eSR network a model id names, e.g. `type: EdgeSR, model_id: eSR-TM_s2_K7_C16`."""
    args = parse_model_id(model_id)
    return VARIANTS[args.pop('variant')](**args)


def model_id_from_path(path: str) -> str | None:
    """`eSR-TM_s2_K7_C16` from `.../eSR-TM_s2_K7_C16.model` (None for any other file name)."""
    stem = osp.splitext(osp.basename(path))[0]
    return stem if ONE_LAYER_ID.fullmatch(stem) or CNN_ID.fullmatch(stem) else None
