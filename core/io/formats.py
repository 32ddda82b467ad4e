"""The file formats a model leaves in, and the runtime each model file needs (standard library only, so the
command lines check `--format` and `--output` before torch loads)."""

from __future__ import annotations

from os import path as osp

EXPORT_EXTENSIONS = {'onnx': '.onnx', 'onnx-int8': '.onnx', 'tflite': '.tflite', 'tflite-int8': '.tflite',
                     'safetensors': '.safetensors'}
EXPORT_FORMATS = tuple(EXPORT_EXTENSIONS)
FILE_BACKENDS = {'.onnx': 'onnxruntime', '.tflite': 'tflite'}


def file_backend(path: str) -> str:
    """The runtime a model file needs: .onnx → onnxruntime, .tflite → tflite, anything else → torch."""
    return FILE_BACKENDS.get(osp.splitext(path)[1].lower(), 'torch')


def needs_calibration(fmt: str, has_qat_graph: bool) -> bool:
    """Post-training int8 calibrates on images; a QAT checkpoint's tflite-int8 uses the ranges QAT learned."""
    return fmt.endswith('int8') and not (fmt == 'tflite-int8' and has_qat_graph)
