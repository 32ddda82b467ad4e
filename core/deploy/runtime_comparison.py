"""Y-PSNR of exported files, each run by its own runtime, beside the fp32 PyTorch model they came from."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from os import path as osp

import numpy as np
import torch

from core.deploy.app_tiling import app_forward
from core.deploy.export import export_model
from core.deploy.model import DeployModel
from core.deploy.native_runtimes import NcnnRuntime
from core.deploy.paired_psnr import Forward, y_psnr
from core.deploy.receptive_field import receptive_radius
from core.deploy.runtimes import Runtime, open_runtime
from core.deploy.tiling import bounded_tile, tiled_forward
from core.errors import UserError
from core.io.formats import EXPORT_EXTENSIONS


def runtime_forward(runtime: Runtime, pad: int) -> Forward:
    """A torch-in, torch-out forward over any runtime; fixed-size files are tiled to their input size, bounded
    ones (ExecuTorch) only where the image exceeds their bound."""
    tile = bounded_tile(None, pad, runtime.max_size)

    def forward(lq: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(tiled_forward(runtime, lq.numpy(), runtime.scale, tile, pad, runtime.fixed_size))

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


def app_runtime_forward(ncnn_param: str) -> Forward:
    """A torch-in, torch-out forward that runs an ncnn file as Real-ESRGAN-ncnn-vulkan does: its tiles, mirrored
    borders, 8-bit pixels and fp16 storage."""
    runtime = NcnnRuntime(ncnn_param, fp16=True)
    return lambda lq: torch.from_numpy(app_forward(runtime, lq.numpy()))


def compare_app_on_set(model: DeployModel, ncnn_param: str, dataroot: str) -> str:
    """A line: the set's Y-PSNR when Real-ESRGAN-ncnn-vulkan runs the file, beside torch fp32."""
    name = osp.basename(osp.normpath(dataroot))
    reference = y_psnr(model.net, dataroot, model.scale, _color(model))
    measured = y_psnr(app_runtime_forward(ncnn_param), dataroot, model.scale, _color(model))
    return (f'{name} Y-PSNR as Real-ESRGAN-ncnn-vulkan and Upscayl run {osp.basename(ncnn_param)} (mirrored '
            f'borders, 8-bit): {measured:.3f} dB ({measured - reference:+.3f} from torch fp32)')


@dataclass(frozen=True)
class QuantRow:
    label: str
    psnr: float


def quantization_rows(fp32: DeployModel, dataroot: str, calibration: list[np.ndarray], size: tuple[int, int],
                      qat: DeployModel | None = None) -> list[QuantRow]:
    """fp32 torch, PTQ int8 TFLite and (given a QAT checkpoint) QAT int8 TFLite Y-PSNR on one set."""
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


@dataclass(frozen=True)
class RuntimeRow:
    format: str
    runtime: str
    max_abs_diff: float  # on the export check image (NaN: not run here)
    psnr: float | None  # on the set (None: not run here, or the export failed)
    note: str


APP_FORMAT = 'ncnn app'  # the ncnn file the apps load, run as they run it (core.deploy.app_tiling)


def runtime_rows(model: DeployModel, formats: list[str], dataroot: str, calibration: list[np.ndarray],
                 size: tuple[int, int]) -> list[RuntimeRow]:
    """Every format exported and run by its own runtime on the set (Core ML: converted and checked only), each
    next to torch fp32; a format the runtime cannot hold gives its one-line error as the note."""
    color = _color(model)
    pad = receptive_radius(model.net, model.num_in_ch, model.scale)
    rows = [RuntimeRow('torch fp32', 'torch', 0.0, y_psnr(model.net, dataroot, model.scale, color), '')]
    with tempfile.TemporaryDirectory() as folder:
        for fmt in formats:
            app = fmt == APP_FORMAT
            base = 'ncnn' if app else fmt
            path = osp.join(folder, f"{fmt.replace(' ', '_')}{EXPORT_EXTENSIONS[base]}")
            try:
                report = export_model(model, base, path, size=size, calibration=calibration,
                                      ncnn_app='realesrgan' if app else None)
            except UserError as err:
                rows.append(RuntimeRow(fmt, '', float('nan'), None, str(err)))
                continue
            if not report.ran:  # Core ML
                rows.append(RuntimeRow(fmt, 'Core ML: macOS only', report.max_abs_diff, None,
                                       report.note.split(': ', 1)[-1]))
                continue
            if app:
                forward, name = app_runtime_forward(report.output), 'ncnn as Real-ESRGAN-ncnn-vulkan runs it'
            else:
                runtime = open_runtime(report.output)
                forward, name = runtime_forward(runtime, pad), runtime.name
            rows.append(RuntimeRow(fmt, name, report.max_abs_diff, y_psnr(forward, dataroot, model.scale, color),
                                   report.note))
    return rows


def format_runtime_rows(title: str, rows: list[RuntimeRow], dataroot: str) -> str:
    """A markdown table: format, runtime, max abs difference, Y-PSNR and its change from torch fp32."""
    name = osp.basename(osp.normpath(dataroot))
    lines = [f'**{title}**', '', f'| format | runs on | max abs diff (check image) | {name} Y-PSNR | vs torch fp32 |',
             '| --- | --- | ---: | ---: | ---: |']
    for row in rows:
        diff = '—' if math.isnan(row.max_abs_diff) else f'{row.max_abs_diff:.2g}'
        psnr = '—' if row.psnr is None else f'{row.psnr:.3f}'
        change = '—' if row.psnr is None else f'{row.psnr - rows[0].psnr:+.3f}'
        note = f' ({row.note})' if row.note and row.psnr is None else ''
        lines.append(f'| {row.format} | {row.runtime or "not exported"}{note} | {diff} | {psnr} | {change} |')
    return '\n'.join(lines)


def format_rows(rows: list[QuantRow], dataroot: str) -> str:
    name = osp.basename(osp.normpath(dataroot))
    lines = [f"{'':28}{name + ' Y-PSNR (dB)':>22}{'vs fp32':>10}"]
    lines += [f'{row.label:28}{row.psnr:>22.3f}{row.psnr - rows[0].psnr:>+10.3f}' for row in rows]
    return '\n'.join(lines)
