"""Pieces several families share: channel widths of deployable forms, the repeated-input shortcut, outputs.

Not a `*_arch.py` file, so the registry scan does not import it as a family.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from core.archs.network import SRNetwork
from core.reparam.bicubic import RADIUS, bicubic_upsample_kernel, symmetric_pad


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def plain_last_width(num_out_ch: int, upscale: int) -> int:
    """Width of a plain model's last convs: out·s² rounded up to a multiple of 4 (28 at x3)."""
    return round_up(num_out_ch * upscale * upscale, 4)


def et_width(num_feat: int, num_in_ch: int, multiple: int = 4) -> int:
    """Hidden width of an ET form: the features plus the carried input, rounded up to `multiple`."""
    return round_up(num_feat + num_in_ch, multiple)


def input_channels(net: nn.Module, default: int = 3) -> int:
    """The channels a network takes: its first conv's input (`default` for weight-free nets such as Bicubic)."""
    conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    return default if conv is None else conv.in_channels


def repeat_channels(x: torch.Tensor, repeats: int) -> torch.Tensor:
    """repeat_interleave along channels (each input channel s² times: the nearest-neighbour residual).

    When exported (torch.export, or TorchScript tracing for pnnx) it is written as one-channel slices and a
    concatenation: ncnn has no repeat_interleave layer, and XNNPACK (ExecuTorch) leaves the expand it becomes to
    slow portable kernels. Both forms only copy values, so they agree bit for bit; training keeps the one op.
    """
    if torch.jit.is_tracing() or torch.compiler.is_exporting():
        # a one-channel input is not sliced: a no-op slice becomes aten.alias, which Core ML and XNNPACK reject
        channels = [x] if x.shape[1] == 1 else [x[:, c:c + 1] for c in range(x.shape[1])]
        return torch.cat([channel for channel in channels for _ in range(repeats)], dim=1)
    return torch.repeat_interleave(x, repeats, dim=1)


class RepeatShortcutNet(SRNetwork):
    """y = PixelShuffle(backbone(x) + repeat_interleave(x, s², dim=1)): the nearest-neighbour residual."""

    upscale: int
    backbone: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = repeat_channels(x, self.upscale * self.upscale)
        return F.pixel_shuffle(self.backbone(x) + shortcut, self.upscale)


class TrimmedShuffleNet(SRNetwork):
    """y = PixelShuffle(backbone(x)[:, :out·s²]): an ET form whose output width was padded to a multiple of 4."""

    upscale: int
    out_channels: int
    backbone: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(x)
        if out.shape[1] != self.out_channels:  # a no-op slice becomes aten.alias, which splits exported graphs
            out = out[:, :self.out_channels]
        return F.pixel_shuffle(out, self.upscale)


class BicubicUpsample(SRNetwork):
    """MATLAB bicubic upsampling (imresize) by an integer factor, as a depthwise conv and PixelShuffle.

    Equal to basicsr's `imresize` to float rounding (tests/reparam/test_reparam.py), but one conv instead of a Python
    loop over rows: it runs on any device, in any dtype, and exports to ONNX and TFLite.
    """

    def __init__(self, upscale: int) -> None:
        super().__init__()
        self.upscale = upscale
        self.register_buffer('kernel', bicubic_upsample_kernel(upscale).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        kernel = self.kernel.to(x.dtype).repeat(channels, 1, 1, 1)
        out = F.conv2d(symmetric_pad(x, RADIUS), kernel, groups=channels)
        return F.pixel_shuffle(out, self.upscale)
