"""A model on a chosen backend: torch as it is, or any other through a temporary export checked by its runtime.
What scripts/upscale.py --backend and scripts/benchmark_video.py both run."""

from __future__ import annotations

from os import path as osp

from core.deploy.export import ExportReport, export_model
from core.deploy.model import DeployModel
from core.deploy.runtimes import Runtime, TorchRuntime, open_runtime
from core.io.formats import EXPORT_EXTENSIONS

EXPORT_FOR_BACKEND = {'onnxruntime': 'onnx', 'tflite': 'tflite', 'ncnn': 'ncnn', 'ncnn-vulkan': 'ncnn',
                      'executorch': 'executorch', 'openvino': 'openvino'}


def backend_runtime(model: DeployModel, backend: str, folder: str,
                    size: tuple[int, int]) -> tuple[Runtime, ExportReport | None]:
    """The runtime, and the export's report (None for torch); `size` is a TFLite or ExecuTorch file's input."""
    if backend == 'torch':
        return TorchRuntime(model), None
    fmt = EXPORT_FOR_BACKEND[backend]
    path = osp.join(folder, f'{backend}{EXPORT_EXTENSIONS[fmt]}')
    report = export_model(model, fmt, path, size=size)  # the file records the network's radius
    return open_runtime(path, vulkan=backend == 'ncnn-vulkan'), report
