"""Y-PSNR of exported files, each run by its own runtime, beside the fp32 PyTorch model they came from."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from os import path as osp

import numpy as np
import torch

from core.deploy.model import DeployModel
from core.deploy.paired_psnr import Forward, y_psnr
from core.deploy.receptive_field import receptive_radius
from core.deploy.runtimes import Runtime, open_runtime
from core.deploy.tiling import tiled_forward


def runtime_forward(runtime: Runtime, pad: int) -> Forward:
    """A torch-in, torch-out forward over any runtime; fixed-size files are tiled to their input size."""

    def forward(lq: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(tiled_forward(runtime, lq.numpy(), runtime.scale, None, pad, runtime.fixed_size))

    return forward


def _color(model: DeployModel) -> str | None:
    return 'y' if model.num_in_ch == 1 else None


def compare_on_set(model: DeployModel, exported: str, dataroot: str) -> list[str]:
    """Lines: the set's Y-PSNR with torch fp32 (and the QAT graph), and with the exported file."""
    pad = receptive_radius(model.net, model.num_in_ch, model.scale)
    name = osp.basename(osp.normpath(dataroot))
    reference = y_psnr(model.net, dataroot, model.scale, _color(model))
    runtime = open_runtime(exported)
    measured = y_psnr(runtime_forward(runtime, pad), dataroot, model.scale, _color(model))
    lines = [f'{name} Y-PSNR: torch fp32 {reference:.3f} dB, {runtime.name} ({osp.basename(exported)}) '
             f'{measured:.3f} dB ({measured - reference:+.3f})']
    if model.qat_graph is not None:
        fake = y_psnr(model.qat_graph, dataroot, model.scale, _color(model))
        lines.append(f'{name} Y-PSNR: torch QAT graph (fake-quantized) {fake:.3f} dB')
    return lines


@dataclass(frozen=True)
class QuantRow:
    label: str
    psnr: float


def quantization_rows(fp32: DeployModel, dataroot: str, calibration: list[np.ndarray], size: tuple[int, int],
                      qat: DeployModel | None = None) -> list[QuantRow]:
    """fp32 torch, PTQ int8 TFLite and (given a QAT checkpoint) QAT int8 TFLite Y-PSNR on one set."""
    from core.deploy.export import export_model

    color = _color(fp32)
    pad = receptive_radius(fp32.net, fp32.num_in_ch, fp32.scale)
    rows = [QuantRow(f'{fp32.arch} fp32 (torch)', y_psnr(fp32.net, dataroot, fp32.scale, color))]
    with tempfile.TemporaryDirectory() as folder:
        ptq = osp.join(folder, 'ptq.tflite')
        export_model(fp32, 'tflite-int8', ptq, size=size, calibration=calibration)
        rows.append(QuantRow('PTQ int8 (TFLite)', y_psnr(runtime_forward(open_runtime(ptq), pad), dataroot,
                                                         fp32.scale, color)))
        if qat is not None:
            path = osp.join(folder, 'qat.tflite')
            export_model(qat, 'tflite-int8', path, size=size)
            rows.append(QuantRow('QAT int8 (TFLite)', y_psnr(runtime_forward(open_runtime(path), pad), dataroot,
                                                             qat.scale, color)))
    return rows


def format_rows(rows: list[QuantRow], dataroot: str) -> str:
    name = osp.basename(osp.normpath(dataroot))
    lines = [f"{'':28}{name + ' Y-PSNR (dB)':>22}{'vs fp32':>10}"]
    lines += [f'{row.label:28}{row.psnr:>22.3f}{row.psnr - rows[0].psnr:>+10.3f}' for row in rows]
    return '\n'.join(lines)
