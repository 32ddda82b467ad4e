"""The file formats a model leaves in, and the runtime each model file needs (standard library only, so the
command lines check `--format` and `--output` before torch loads)."""

from __future__ import annotations

from os import path as osp

EXPORT_EXTENSIONS = {'onnx': '.onnx', 'onnx-int8': '.onnx', 'tflite': '.tflite', 'tflite-int8': '.tflite',
                     'ncnn': '.param', 'executorch': '.pte', 'executorch-int8': '.pte', 'coreml': '.mlpackage',
                     'coreml-fp16': '.mlpackage', 'coreml-int8w': '.mlpackage', 'openvino': '.xml',
                     'safetensors': '.safetensors', 'web': ''}  # web: a folder (page, runtime, model.onnx)
EXPORT_FORMATS = tuple(EXPORT_EXTENSIONS)
FILE_BACKENDS = {'.onnx': 'onnxruntime', '.tflite': 'tflite', '.param': 'ncnn', '.pte': 'executorch',
                 '.xml': 'openvino', '.mlpackage': 'coreml'}
# Formats whose weights sit in a second file beside the named one; both are written, or neither.
WEIGHTS_BESIDE = {'.param': '.bin', '.xml': '.bin'}
QAT_FORMATS = ('tflite-int8', 'executorch-int8')  # where a QAT checkpoint's learned ranges go as they are
# Files built for --size: TFLite takes that size only, ExecuTorch any size up to it.
SIZED_FORMATS = ('tflite', 'tflite-int8', 'executorch', 'executorch-int8')


def file_backend(path: str) -> str:
    """The runtime a model file needs, by extension (.onnx → onnxruntime, ...); anything else → torch."""
    return FILE_BACKENDS.get(osp.splitext(path)[1].lower(), 'torch')


def weights_file(path: str) -> str | None:
    """The second file a .param (ncnn) or .xml (OpenVINO) model needs: the same stem with .bin."""
    stem, ext = osp.splitext(path)
    return stem + WEIGHTS_BESIDE[ext.lower()] if ext.lower() in WEIGHTS_BESIDE else None


def needs_calibration(fmt: str, has_qat_graph: bool) -> bool:
    """Post-training int8 calibrates on images; a QAT checkpoint's tflite-int8 and executorch-int8 use the ranges
    QAT learned. Core ML's int8w quantizes weights only, so it needs none."""
    return fmt.endswith('int8') and not (fmt in QAT_FORMATS and has_qat_graph)


def ncnn_app_name(output: str, scale: int) -> str:
    """The file Real-ESRGAN-ncnn-vulkan and Upscayl load: `<name>-x<scale>.param` (Upscayl reads the scale there)."""
    stem, ext = osp.splitext(output)
    suffix = f'-x{scale}'
    return output if stem.endswith(suffix) else f'{stem}{suffix}{ext}'
