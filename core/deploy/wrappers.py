"""What is exported around a network: its image output alone, or uint8 NHWC edges for camera buffers."""

from __future__ import annotations

import torch
from torch import nn

from core.archs.network import first_output


class NetworkOutput(nn.Module):
    """The super-resolved image alone (training forms also return auxiliary outputs)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return first_output(self.net(x))


class Uint8NHWC(nn.Module):
    """uint8 N×H×W×C in and out around a float NCHW network in [0, 1]: what a camera pipeline hands over."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = first_output(self.net(x.permute(0, 3, 1, 2).float() / 255))
        return torch.round(torch.clamp(y, 0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1)
