"""Export a deployable model to ONNX, ORT int8, TFLite fp32 or TFLite int8, checked before the file is kept.

Every format is run by its own runtime on a real image (scikit-image's astronaut, shipped in its wheel) and
compared with PyTorch: float formats must agree within the tolerance, int8 formats within the int8 tolerance
(mean absolute error), else nothing is written. The file carries its scale, channels and receptive-field
radius, so `scripts/upscale.py` needs nothing but the file.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from os import path as osp

import numpy as np
import torch
from basicsr.utils import bgr2ycbcr
from skimage import data as skimage_data

from core.checkpoint import save_safetensors
from core.converters.api import load_network
from core.deploy.calibration import fit_to_size
from core.deploy.model import DeployModel
from core.deploy.onnx_export import export_onnx, onnx_difference
from core.deploy.ort_quantization import quantize_onnx_static
from core.deploy.output_ranges import ranges_summary
from core.deploy.pt2e_calibration import calibrated_graph, observed_ranges
from core.deploy.ptq import prepare_for_int8
from core.deploy.qat import export_qat_tflite
from core.deploy.receptive_field import receptive_radius
from core.deploy.runtimes import OnnxRuntime, Runtime, TFLiteRuntime
from core.deploy.tflite_export import convert_to_tflite, quantize_pt2e
from core.errors import UserError
from core.staging import staged_file

FORMATS = ('onnx', 'onnx-int8', 'tflite', 'tflite-int8', 'safetensors')
DEFAULT_SIZE = (360, 640)  # LR input of the ETDS paper's mobile measurements (1440×2560 output at x4)
ONNX_CHECK_SIZE = (96, 124)  # odd sizes are not needed: the graph is the same for every size


@dataclass
class ExportReport:
    format: str
    output: str
    max_abs_diff: float
    mean_abs_diff: float  # nan where only the max is checked (ONNX)
    int8_preparation: str = ''  # what was done to the float network before int8 quantization


def check_image(num_in_ch: int, size: tuple[int, int]) -> np.ndarray:
    """A real photograph as a 1×C×H×W float input (RGB, or its MATLAB Y for 1-channel models)."""
    rgb = skimage_data.astronaut().astype(np.float32) / 255
    image = bgr2ycbcr(rgb[..., ::-1].copy(), y_only=True)[..., None] if num_in_ch == 1 else rgb
    patch = fit_to_size(image, size, np.random.default_rng(0))
    return np.ascontiguousarray(patch.transpose(2, 0, 1)[None], dtype=np.float32)


def export_meta(model: DeployModel, fmt: str, radius: int) -> dict:
    return {'arch': model.arch, 'args': model.args, 'scale': model.scale, 'num_in_ch': model.num_in_ch,
            'radius': radius, 'format': fmt}


def _difference(runtime: Runtime, reference: torch.nn.Module, x: np.ndarray, pixels: bool = False
                ) -> tuple[float, float]:
    """Max and mean abs difference; `pixels`: the file's output is pinned to [0, 1] (int8), so is the reference."""
    with torch.inference_mode():
        expected = reference(torch.from_numpy(x)).numpy()
    if pixels:
        expected = np.clip(expected, 0, 1)
    diff = np.abs(runtime(x) - expected)
    return float(diff.max()), float(diff.mean())


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


def export_model(model: DeployModel, fmt: str, output: str, size: tuple[int, int] = DEFAULT_SIZE,
                 calibration: list[np.ndarray] | None = None, nhwc_uint8: bool = False,
                 pixel_shuffle: str = 'depth-to-space', reduce_range: bool = False, tolerance: float = 1e-5,
                 int8_tolerance: float = 0.02, equalized: bool = True, rounding: str = 'gptq') -> ExportReport:
    """Write `output` in format `fmt` if its runtime reproduces the model; see the module docstring.

    Post-training int8 first prepares the network (`core.deploy.ptq`: PReLUs split, channels rescaled, weights
    GPTQ-rounded); `equalized=False` and `rounding='nearest'` give the plain quantizer's result.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    from_qat = fmt == 'tflite-int8' and model.qat_graph is not None  # QAT learned the ranges: no calibration
    if fmt.endswith('int8') and not calibration and not from_qat:
        raise UserError(f'{fmt} needs calibration images: pass --calib FOLDER of LR images, or -opt train.yml')
    radius = receptive_radius(model.net, model.num_in_ch, model.scale)
    meta = export_meta(model, fmt, radius)
    if fmt == 'safetensors':
        return _export_safetensors(model, output, meta, tolerance)
    limit = tolerance
    net, preparation, ranges = model.net, '', []
    if fmt.endswith('int8') and not from_qat:
        prepared = prepare_for_int8(model.net, calibration, equalized, rounding)
        net, preparation = prepared.net, prepared.summary()
    with staged_file(output) as tmp:
        if fmt == 'onnx':
            x = check_image(model.num_in_ch, ONNX_CHECK_SIZE)
            export_onnx(model.net, tmp, model.num_in_ch, meta, nhwc_uint8, pixel_shuffle)
            max_diff, mean_diff = onnx_difference(model.net, tmp, x, nhwc_uint8), float('nan')
            limit += 0.5 / 255 if nhwc_uint8 else 0  # uint8 edges: half a grey level of rounding
            runtime_name = 'onnxruntime'
        else:
            if fmt == 'onnx-int8':
                x = check_image(model.num_in_ch, ONNX_CHECK_SIZE)
                with tempfile.TemporaryDirectory() as folder:
                    float_path = osp.join(folder, 'float.onnx')
                    export_onnx(net, float_path, model.num_in_ch, meta, pixel_shuffle=pixel_shuffle)
                    chosen = None
                    if equalized:  # the LiteRT path's ranges, by tensor name: one set for both runtimes
                        graph, _, ranges = calibrated_graph(net, calibration, narrow_ranges=True)
                        chosen = observed_ranges(graph)
                    quantize_onnx_static(float_path, tmp, calibration, reduce_range=reduce_range, chosen=chosen)
                runtime: Runtime = OnnxRuntime(tmp)
            else:
                x = check_image(model.num_in_ch, size)
                example = torch.from_numpy(x)
                if fmt == 'tflite':
                    convert_to_tflite(model.net.eval(), example, tmp, meta)
                elif from_qat:
                    export_qat_tflite(model.qat_graph, example, tmp, meta)
                else:
                    quantized, quantizer, ranges = quantize_pt2e(net, calibration, narrow_ranges=equalized)
                    convert_to_tflite(quantized, example, tmp, meta, quantizer)
                runtime = TFLiteRuntime(tmp)
            preparation = '; '.join(filter(None, [preparation, ranges_summary(ranges)]))
            # A QAT file runs what the fake-quantized graph trained; its float weights alone are not the model.
            max_diff, mean_diff = _difference(runtime, model.qat_graph if from_qat else model.net, x,
                                              pixels=fmt.endswith('int8'))
            runtime_name = runtime.name
        if fmt.endswith('int8'):
            if not mean_diff <= int8_tolerance:
                raise UserError(f'{fmt} is too far from fp32: mean abs difference {mean_diff:.3g} > {int8_tolerance:g} '
                                f'on the check image; calibrate on more representative images (--calib); '
                                f'{output} was not written')
        elif not max_diff <= limit:
            raise UserError(f'{runtime_name} differs from torch by {max_diff:.3g} (> {limit:.3g}) on the check '
                            f'image; {output} was not written')
        return ExportReport(fmt, output, max_diff, mean_diff, preparation)
