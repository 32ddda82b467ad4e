"""Y-PSNR of an exported file, run by its own runtime, beside the fp32 PyTorch model it came from."""

from __future__ import annotations

import torch

from core.deploy.model import DeployModel
from core.deploy.runtimes import Runtime, open_runtime
from core.deploy.tiling import tiled_forward
from core.evaluation import Forward, y_psnr


def runtime_forward(runtime: Runtime, pad: int) -> Forward:
    """A torch-in, torch-out forward over any runtime; fixed-size files are tiled to their input size."""

    def forward(lq: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(tiled_forward(runtime, lq.numpy(), runtime.scale, None, pad, runtime.fixed_size))

    return forward


def compare_on_set(model: DeployModel, exported: str, dataroot: str, pad: int | None = None) -> list[str]:
    """Lines: the set's Y-PSNR with torch fp32 and with the exported file, and their difference."""
    from core.deploy.receptive_field import receptive_radius

    color = 'y' if model.num_in_ch == 1 else None
    pad = receptive_radius(model.net, model.num_in_ch, model.scale) if pad is None else pad
    reference = y_psnr(model.net, dataroot, model.scale, color)
    runtime = open_runtime(exported)
    measured = y_psnr(runtime_forward(runtime, pad), dataroot, model.scale, color)
    name = dataroot.rstrip('/').split('/')[-1]
    return [f'{name} Y-PSNR: torch fp32 {reference:.3f} dB, {runtime.name} ({exported.split("/")[-1]}) '
            f'{measured:.3f} dB ({measured - reference:+.3f})']
