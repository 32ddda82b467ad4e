"""Export a deployable model to ONNX, TFLite, ncnn, ExecuTorch, Core ML or OpenVINO (fp32, fp16 or int8),
checked before the file is kept.

Every format but Core ML is run by its own runtime on a real image (scikit-image's astronaut, shipped in its
wheel) and compared with PyTorch: float formats must agree within the tolerance, fp16 storage within
FP16_TOLERANCE, int8 formats within the int8 tolerance (mean absolute error), else nothing is written. Core ML
runs only on macOS: its program is read back and checked instead (core.deploy.coreml_export). Files carry their
scale, channels and receptive-field radius (ncnn's give them by their layers), so `scripts/upscale.py` needs
nothing but the file.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from os import path as osp

import numpy as np
import torch
from skimage import data as skimage_data

from core.convert.conversion import load_network
from core.data.colour import network_input
from core.deploy.calibration import fit_to_size
from core.deploy.coreml_export import PRECISIONS, export_coreml
from core.deploy.executorch_export import export_executorch, export_qat_executorch
from core.deploy.model import DeployModel
from core.deploy.native_runtimes import ExecuTorchRuntime, NcnnRuntime, OpenVinoRuntime
from core.deploy.ncnn_export import export_ncnn
from core.deploy.onnx_export import export_onnx
from core.deploy.openvino_export import export_openvino
from core.deploy.ort_quantization import quantize_onnx_static
from core.deploy.output_ranges import ranges_summary
from core.deploy.pt2e_calibration import calibrated_graph, observed_ranges, quantize_pt2e
from core.deploy.ptq import prepare_for_int8
from core.deploy.receptive_field import receptive_radius
from core.deploy.runtime_check import runtime_difference
from core.deploy.runtimes import OnnxRuntime, Runtime, TFLiteRuntime
from core.deploy.tflite_export import convert_to_tflite, export_qat_tflite
from core.deploy.web_export import MODEL_FILE, check_site_folder, write_site
from core.errors import UserError
from core.io.checkpoint import save_safetensors
from core.io.formats import EXPORT_FORMATS, ncnn_app_name, needs_calibration, weights_file
from core.io.staging import staged_file, staged_outputs

DEFAULT_SIZE = (360, 640)  # LR input of the ETDS paper's mobile measurements (1440×2560 output at x4)
ONNX_CHECK_SIZE = (96, 124)  # odd sizes are not needed: the graph is the same for every size
FP16_TOLERANCE = 4e-3  # fp16 storage (the ncnn apps' files): about one grey level at the worst pixel


@dataclass
class ExportReport:
    format: str
    output: str
    max_abs_diff: float
    mean_abs_diff: float
    int8_preparation: str = ''  # what was done to the float network before int8 quantization
    note: str = ''  # what else the check found (Core ML: what was checked instead of running it)

    @property
    def ran(self) -> bool:
        """False for a file this machine cannot run (Core ML): its differences are NaN."""
        return not math.isnan(self.max_abs_diff)


def check_image(num_in_ch: int, size: tuple[int, int]) -> np.ndarray:
    """A real photograph as a 1×C×H×W float input (RGB, or its MATLAB Y for 1-channel models)."""
    bgr = np.ascontiguousarray(skimage_data.astronaut()[..., ::-1], dtype=np.float32) / 255
    patch = fit_to_size(network_input(bgr, num_in_ch), size, np.random.default_rng(0))
    return np.ascontiguousarray(patch.transpose(2, 0, 1)[None], dtype=np.float32)


def export_meta(model: DeployModel, fmt: str, radius: int) -> dict:
    return {'arch': model.arch, 'args': model.args, 'scale': model.scale, 'num_in_ch': model.num_in_ch,
            'radius': radius, 'format': fmt}


def _export_safetensors(model: DeployModel, output: str, meta: dict, tolerance: float) -> ExportReport:
    """The deploy form's weights and meta; checked by rebuilding the network from the file alone."""
    x = torch.from_numpy(check_image(model.num_in_ch, ONNX_CHECK_SIZE))
    with staged_file(output) as tmp:
        save_safetensors(tmp, model.net.state_dict(), meta)
        _, _, rebuilt = load_network(tmp)
        with torch.inference_mode():
            diff = (rebuilt(x) - model.net(x)).abs()
        if not float(diff.max()) <= tolerance:
            raise UserError(f'{output} does not rebuild the model (max abs difference {float(diff.max()):.3g}); '
                            'it was not written')
    return ExportReport('safetensors', output, float(diff.max()), float(diff.mean()))


@dataclass
class _Written:
    """What one format's writer leaves for the check: the file's runtime, the input and the network it must match."""

    runtime: Runtime
    x: np.ndarray
    reference: torch.nn.Module
    ranges: list = field(default_factory=list)  # activation ranges the output error chose (int8)
    note: str = ''  # what the writer found besides the numbers


def _write_onnx(model: DeployModel, net: torch.nn.Module, path: str, meta: dict, options: dict) -> _Written:
    export_onnx(model.net, path, model.num_in_ch, meta, options['nhwc_uint8'], options['pixel_shuffle'])
    return _Written(OnnxRuntime(path), check_image(model.num_in_ch, ONNX_CHECK_SIZE), model.net)


def _write_onnx_int8(model: DeployModel, net: torch.nn.Module, path: str, meta: dict, options: dict) -> _Written:
    ranges, chosen = [], None
    with tempfile.TemporaryDirectory() as folder:
        float_path = osp.join(folder, 'float.onnx')
        export_onnx(net, float_path, model.num_in_ch, meta, pixel_shuffle=options['pixel_shuffle'])
        if options['equalized']:  # the LiteRT path's ranges, by tensor name: one set for both runtimes
            graph, _, ranges = calibrated_graph(net, options['calibration'], narrow_ranges=True)
            chosen = observed_ranges(graph)
        quantize_onnx_static(float_path, path, options['calibration'], reduce_range=options['reduce_range'],
                             chosen=chosen)
    return _Written(OnnxRuntime(path), check_image(model.num_in_ch, ONNX_CHECK_SIZE), model.net, ranges)


def _write_tflite(model: DeployModel, net: torch.nn.Module, path: str, meta: dict, options: dict) -> _Written:
    x = check_image(model.num_in_ch, options['size'])
    convert_to_tflite(model.net.eval(), torch.from_numpy(x), path, meta)
    return _Written(TFLiteRuntime(path), x, model.net)


def _write_tflite_int8(model: DeployModel, net: torch.nn.Module, path: str, meta: dict, options: dict) -> _Written:
    x = check_image(model.num_in_ch, options['size'])
    if model.qat_graph is not None:  # QAT learned the ranges; the file runs what the fake-quantized graph trained
        export_qat_tflite(model.qat_graph, torch.from_numpy(x), path, meta)
        return _Written(TFLiteRuntime(path), x, model.qat_graph)
    quantized, quantizer, ranges = quantize_pt2e(net, options['calibration'], narrow_ranges=options['equalized'])
    convert_to_tflite(quantized, torch.from_numpy(x), path, meta, quantizer)
    return _Written(TFLiteRuntime(path), x, model.net, ranges)


def _write_ncnn(model: DeployModel, net: torch.nn.Module, path: str, meta: dict, options: dict) -> _Written:
    fp16 = options['ncnn_app'] is not None  # the apps' storage
    export_ncnn(model.net, path, weights_file(path), model.num_in_ch, fp16=fp16)
    return _Written(NcnnRuntime(path, fp16=fp16), check_image(model.num_in_ch, ONNX_CHECK_SIZE), model.net)


def _delegation_note(undelegated: list[str]) -> str:
    return ('every op runs in XNNPACK' if not undelegated else
            f"left to ExecuTorch's portable kernels: {', '.join(undelegated)}")


def _write_executorch(model: DeployModel, net: torch.nn.Module, path: str, meta: dict, options: dict,
                      int8: bool = False) -> _Written:
    x = check_image(model.num_in_ch, options['size'])
    if int8 and model.qat_graph is not None:  # QAT learned the ranges; the program runs what the graph trained
        undelegated = export_qat_executorch(model.qat_graph, path, torch.from_numpy(x), meta)
        return _Written(ExecuTorchRuntime(path), x, model.qat_graph, note=_delegation_note(undelegated))
    ranges, undelegated = export_executorch(net, path, torch.from_numpy(x), meta,
                                            options['calibration'] if int8 else None, options['equalized'])
    return _Written(ExecuTorchRuntime(path), x, model.net, ranges, _delegation_note(undelegated))


def _write_executorch_int8(model: DeployModel, net: torch.nn.Module, path: str, meta: dict,
                           options: dict) -> _Written:
    return _write_executorch(model, net, path, meta, options, int8=True)


def _write_openvino(model: DeployModel, net: torch.nn.Module, path: str, meta: dict, options: dict) -> _Written:
    export_openvino(model.net, path, model.num_in_ch, meta)
    return _Written(OpenVinoRuntime(path), check_image(model.num_in_ch, ONNX_CHECK_SIZE), model.net)


def _write_web(model: DeployModel, net: torch.nn.Module, path: str, meta: dict, options: dict) -> _Written:
    """A folder: the fp32 ONNX file (checked like --format onnx) and the page that runs it in a browser."""
    os.makedirs(path)
    written = _write_onnx(model, net, osp.join(path, MODEL_FILE), meta, options)
    version = write_site(path, {'origin': model.origin, 'arch': model.arch, 'scale': model.scale,
                                'num_in_ch': model.num_in_ch, 'radius': meta['radius']})
    written.note = f'the page runs it with onnxruntime-web {version} (WebGPU when the browser has it, else WASM)'
    return written


WRITERS = {'onnx': _write_onnx, 'onnx-int8': _write_onnx_int8, 'tflite': _write_tflite,
           'tflite-int8': _write_tflite_int8, 'ncnn': _write_ncnn, 'executorch': _write_executorch,
           'executorch-int8': _write_executorch_int8, 'openvino': _write_openvino, 'web': _write_web}


def _export_coreml(model: DeployModel, fmt: str, output: str, meta: dict) -> ExportReport:
    """Converted and read back, not run: Core ML predicts only on macOS."""
    with staged_outputs([output]) as (tmp,):
        check = export_coreml(model.net, tmp, model.num_in_ch, meta, PRECISIONS[fmt])
    if PRECISIONS[fmt] == 'int8w':
        weights = 'int8 weights in every conv'
    elif check.weight_difference != check.weight_difference:  # NaN: the graph computes them (Bicubic's taps)
        weights = 'conv weights computed in the graph, not compared'
    else:
        weights = f'conv weights within {check.weight_difference:.2g} of the network'
    note = (f'checked, not run (Core ML predicts only on macOS): {check.convs} convs in '
            f'{PRECISIONS[fmt]}, {weights}; ops {", ".join(op for op in check.ops if op != "const")}')
    return ExportReport(fmt, output, float('nan'), float('nan'), note=note)


def export_model(model: DeployModel, fmt: str, output: str, size: tuple[int, int] = DEFAULT_SIZE,
                 calibration: list[np.ndarray] | None = None, nhwc_uint8: bool = False,
                 pixel_shuffle: str = 'depth-to-space', reduce_range: bool = False, tolerance: float = 1e-5,
                 int8_tolerance: float = 0.02, equalized: bool = True, rounding: str = 'gptq',
                 ncnn_app: str | None = None) -> ExportReport:
    """Write `output` in format `fmt` if its runtime reproduces the model; see the module docstring.

    Post-training int8 first prepares the network (`core.deploy.ptq`: PReLUs split, channels rescaled, weights
    GPTQ-rounded); `equalized=False` and `rounding='nearest'` give the plain quantizer's result.
    `ncnn_app='realesrgan'` writes the ncnn file the SR apps load: `<name>-x<scale>.param/.bin`, fp16 storage.
    """
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"unknown format '{fmt}'; choose one of {', '.join(EXPORT_FORMATS)}")
    calibrates = needs_calibration(fmt, model.qat_graph is not None)
    if calibrates and not calibration:
        raise UserError(f'{fmt} needs calibration images: pass --calib FOLDER of LR images, or -opt train.yml')
    meta = export_meta(model, fmt, receptive_radius(model.net, model.num_in_ch, model.scale))
    if fmt == 'safetensors':
        return _export_safetensors(model, output, meta, tolerance)
    if fmt in PRECISIONS:
        return _export_coreml(model, fmt, output, meta)
    if ncnn_app is not None:
        if fmt != 'ncnn':
            raise UserError(f'ncnn_app is an option of the ncnn format, not {fmt}')
        if model.num_in_ch != 3:
            raise UserError(f'the ncnn apps feed RGB; this model reads {model.num_in_ch} channel(s): export it '
                            'without --ncnn-app')
        output = ncnn_app_name(output, model.scale)
    if fmt == 'web':
        output = osp.normpath(output)  # `site/` names the folder `site`
        check_site_folder(output)
        if nhwc_uint8:
            raise UserError('the web page feeds float planes; export it without --nhwc-uint8')
    net, preparation = model.net, ''
    if calibrates:
        prepared = prepare_for_int8(model.net, calibration, equalized, rounding)
        net, preparation = prepared.net, prepared.summary()
    options = dict(size=size, calibration=calibration, nhwc_uint8=nhwc_uint8, pixel_shuffle=pixel_shuffle,
                   reduce_range=reduce_range, equalized=equalized, ncnn_app=ncnn_app)
    fp16 = ncnn_app is not None
    with staged_outputs([output] + ([weights_file(output)] if weights_file(output) else [])) as temporaries:
        written = WRITERS[fmt](model, net, temporaries[0], meta, options)
        int8, uint8_edges = fmt.endswith('int8'), fmt == 'onnx' and nhwc_uint8
        max_diff, mean_diff = runtime_difference(written.runtime, written.reference, written.x,
                                                 pixels=int8 or uint8_edges, uint8_input=uint8_edges)
        if int8 and not mean_diff <= int8_tolerance:
            raise UserError(f'{fmt} is too far from fp32: mean abs difference {mean_diff:.3g} > {int8_tolerance:g} '
                            f'on the check image; calibrate on more representative images (--calib); '
                            f'{output} was not written')
        limit = FP16_TOLERANCE if fp16 else tolerance + (0.5 / 255 if uint8_edges else 0)  # uint8: half a level
        if not int8 and not max_diff <= limit:
            raise UserError(f'{written.runtime.name} differs from torch by {max_diff:.3g} (> {limit:.3g}) on the '
                            f'check image; {output} was not written')
    preparation = '; '.join(filter(None, [preparation, ranges_summary(written.ranges)]))
    return ExportReport(fmt, output, max_diff, mean_diff, preparation, written.note)
