"""ABPN (anchor-based plain net) and its ET form ABPN_ET, with the official key layout."""

from __future__ import annotations

from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from core.archs.shared import RepeatShortcutNet, TrimmedShuffleNet, et_width, plain_last_width


def _conv(in_ch: int, out_ch: int, kernel_size: int = 3) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)


@ARCH_REGISTRY.register()
class ABPN(RepeatShortcutNet):
    """conv(3→F), ReLU, num_block × [conv(F→F), ReLU], conv(F→3s²), ReLU, conv(3s²→3s²); + the repeated input."""

    def __init__(self, num_feat: int, num_block: int, scale: int) -> None:
        super().__init__()
        self.scale = self.upscale = scale  # `scale` is the official argument name
        out = 3 * scale * scale
        layers: list[nn.Module] = [_conv(3, num_feat), nn.ReLU()]
        layers += [nn.Sequential(_conv(num_feat, num_feat), nn.ReLU()) for _ in range(num_block)]
        layers += [_conv(num_feat, out), nn.ReLU(), _conv(out, out)]
        self.backbone = nn.Sequential(*layers)


@ARCH_REGISTRY.register()
class ABPN_ET(TrimmedShuffleNet):  # noqa: N801  (the official class name)
    """ABPN with the input carried in 3 extra channels (hidden widths rounded up to even) and the clamp folded.

    Official widths: F+4 in the body; 3s²+3 rounded up to even before the last conv (52 at x4, 30 at x3);
    3s² rounded up to 4 at the output (48, 28).
    """

    def __init__(self, num_feat: int, num_block: int, scale: int) -> None:
        super().__init__()
        self.scale = self.upscale = scale
        self.out_channels = 3 * scale * scale
        width, tail = et_width(num_feat, 3, multiple=2), et_width(self.out_channels, 3, multiple=2)
        last = plain_last_width(3, scale)
        layers: list[nn.Module] = [_conv(3, width), nn.ReLU()]
        layers += [nn.Sequential(_conv(width, width), nn.ReLU()) for _ in range(num_block)]
        layers += [_conv(width, tail), nn.ReLU(), _conv(tail, last), nn.ReLU(), _conv(last, last, 1), nn.ReLU()]
        self.backbone = nn.Sequential(*layers)
