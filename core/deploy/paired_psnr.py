"""Direct evaluation on a paired test set, for scripts that report PSNR outside test.py (any runtime)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from basicsr.data import build_dataset
from basicsr.metrics import calculate_psnr
from basicsr.utils import tensor2img
from torch import nn

from core.archs.network import first_output

Forward = Callable[[torch.Tensor], torch.Tensor]  # 1×C×H×W in [0, 1] → 1×C×H·s×W·s


@torch.no_grad()
def y_psnr(net: nn.Module | Forward, dataroot: str, scale: int, color: str | None = None) -> float:
    """Mean Y-PSNR (border crop = scale) of a network, or of any forward function, on an EDSR/BasicSR-layout
    set, exactly as test.py computes it."""
    dataset = build_dataset({'name': 'eval', 'type': 'PairedSRDataset', 'phase': 'test', 'scale': scale,
                             'dataroot': dataroot, 'io_backend': {'type': 'disk'}, 'color': color})
    if isinstance(net, nn.Module):
        net.eval()  # not `net = net.eval()`: torchao's eval of an exported (QAT) graph returns None
    values = []
    for i in range(len(dataset)):
        sample = dataset[i]
        out = first_output(net(sample['lq'][None]))
        values.append(calculate_psnr(tensor2img(out), tensor2img(sample['gt'][None]), crop_border=scale,
                                     test_y_channel=True))
    return float(np.mean(values))
