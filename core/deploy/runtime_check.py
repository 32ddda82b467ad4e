"""How far a runtime running an exported file is from torch running the network, on one input."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.archs.network import first_output
from core.deploy.runtimes import Runtime


def runtime_difference(runtime: Runtime, reference: nn.Module, x: np.ndarray, pixels: bool = False,
                       uint8_input: bool = False) -> tuple[float, float]:
    """Max and mean abs difference. `pixels`: the file's output is pinned to [0, 1] (int8, uint8 edges), so is the
    reference's; `uint8_input`: the file reads whole grey levels, so the reference gets them too."""
    if uint8_input:
        x = (np.round(x * 255) / 255).astype(np.float32)
    with torch.inference_mode():
        expected = first_output(reference(torch.from_numpy(x))).numpy()
    if pixels:
        expected = np.clip(expected, 0, 1)
    diff = np.abs(runtime(x.astype(np.float32)) - expected)
    return float(diff.max()), float(diff.mean())
