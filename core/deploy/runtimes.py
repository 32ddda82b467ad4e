"""One interface over the places a model runs: PyTorch, onnxruntime, the LiteRT interpreter, and (from
core.deploy.native_runtimes) ncnn, ExecuTorch and OpenVINO.

Each runtime takes and returns NCHW float32 images in [0, 1]; whatever the file wants at its edges (uint8
NHWC camera buffers, int8 tensors with their scale and zero point) is converted here, so tiling, upscaling
and evaluation do not care which runtime they drive.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from os import path as osp
from typing import Protocol

import numpy as np
import torch

from core.archs.network import first_output
from core.deploy.file_metadata import META_KEY
from core.deploy.model import DeployModel, load_deploy_model
from core.deploy.native_logs import native_output_to_log
from core.deploy.native_runtimes import ExecuTorchRuntime, NcnnRuntime, OpenVinoRuntime
from core.deploy.optional import require
from core.deploy.receptive_field import receptive_radius
from core.deploy.tflite_flatbuffer import read_metadata
from core.errors import UserError
from core.io.formats import file_backend


class Runtime(Protocol):
    name: str
    num_in_ch: int
    scale: int
    fixed_size: tuple[int, int] | None  # the one input size the file takes (TFLite)
    max_size: tuple[int, int] | None  # the largest input a bounded dynamic file takes (ExecuTorch)
    radius: int | None  # receptive field in input pixels, the context tiles need (None: the file does not say)

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


@dataclass
class TorchRuntime:
    model: DeployModel
    name: str = 'torch'
    fixed_size: tuple[int, int] | None = None  # a PyTorch model takes any size
    max_size: tuple[int, int] | None = None

    @property
    def num_in_ch(self) -> int:
        return self.model.num_in_ch

    @property
    def scale(self) -> int:
        return self.model.scale

    @functools.cached_property
    def radius(self) -> int:
        return receptive_radius(self.model.net, self.model.num_in_ch, self.model.scale)

    @torch.inference_mode()
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return first_output(self.model.net(torch.from_numpy(x))).numpy()


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


@dataclass
class OnnxRuntime:
    path: str
    name: str = 'onnxruntime'
    fixed_size: tuple[int, int] | None = None  # our ONNX files have dynamic height and width
    max_size: tuple[int, int] | None = None
    meta: dict = field(init=False, default_factory=dict)  # what our exporter stored (META_KEY)

    def __post_init__(self) -> None:
        ort = require('onnxruntime', 'onnxruntime')
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(self.path, options, providers=['CPUExecutionProvider'])
        props = self.session.get_modelmeta().custom_metadata_map
        self.meta = json.loads(props[META_KEY]) if META_KEY in props else {}
        self.input = self.session.get_inputs()[0]
        self.nhwc_uint8 = self.input.type == 'tensor(uint8)'
        shape = self.input.shape
        self.num_in_ch = int(shape[3] if self.nhwc_uint8 else shape[1])
        self.scale = int(self.meta['scale']) if 'scale' in self.meta else self._measure_scale()
        self.radius = self.meta.get('radius')  # receptive field, for tiling; files from elsewhere may lack it

    def _measure_scale(self) -> int:
        return self(np.zeros((1, self.num_in_ch, 8, 8), np.float32)).shape[-1] // 8

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.nhwc_uint8:
            out = self.session.run(None, {self.input.name: _to_uint8(x).transpose(0, 2, 3, 1)})[0]
            return out.transpose(0, 3, 1, 2).astype(np.float32) / 255
        return self.session.run(None, {self.input.name: np.ascontiguousarray(x, dtype=np.float32)})[0]


@dataclass
class TFLiteRuntime:
    """A .tflite file: fixed input size, NCHW as litert-torch keeps PyTorch's layout; int8 edges converted."""

    path: str
    name: str = 'tflite'
    threads: int | None = None

    def __post_init__(self) -> None:
        interpreter_module = require('ai_edge_litert.interpreter', 'ai-edge-litert')
        threads = self.threads or os.cpu_count()  # LiteRT's own default may be one thread
        with native_output_to_log('LiteRT'):  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            self.interpreter = interpreter_module.Interpreter(self.path, num_threads=threads)
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        _, self.num_in_ch, height, width = (int(v) for v in self.input['shape'])
        self.fixed_size = self.max_size = (height, width)
        self.scale = int(self.output['shape'][-1]) // width
        self.radius = read_metadata(self.path).get('radius')

    def to_file_input(self, image: np.ndarray) -> np.ndarray:
        """A 1×C×H×W float image in [0, 1] as the file's input tensor (int8 pixels for an int8 file)."""
        if self.input['dtype'] == np.float32:
            return image.astype(np.float32)
        scale, zero_point = self.input['quantization']
        info = np.iinfo(self.input['dtype'])
        return np.clip(np.round(image / scale) + zero_point, info.min, info.max).astype(self.input['dtype'])

    def invoke(self, value: np.ndarray) -> np.ndarray:
        """What the device runs: the file's own input tensor in, its own output tensor out."""
        self.interpreter.set_tensor(self.input['index'], value)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output['index'])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        outputs = []
        for image in x:  # the file's batch size is 1
            out = self.invoke(self.to_file_input(image[None]))
            if self.output['dtype'] != np.float32:
                scale, zero_point = self.output['quantization']
                out = (out.astype(np.float32) - zero_point) * scale
            outputs.append(out.astype(np.float32))
        return np.concatenate(outputs)


def open_runtime(path: str, opt_path: str | None = None, threads: int | None = None,
                 vulkan: bool = False) -> Runtime:
    """A runtime for a checkpoint (.pth, any form the toolkit knows) or an exported file (.onnx, .tflite, ncnn
    .param, .pte, OpenVINO .xml); `vulkan` runs an ncnn file on the Vulkan device."""
    kind = file_backend(path)
    if kind == 'coreml':
        raise UserError(f'{path} is a Core ML model: it runs only on macOS and iOS; export another format to run '
                        'it here (onnx, ncnn, openvino)')
    if not osp.isfile(path):
        raise UserError(f'--model {path} does not exist; check the path')
    if kind == 'onnxruntime':
        return OnnxRuntime(path)
    if kind == 'tflite':
        return TFLiteRuntime(path, threads=threads)
    if kind == 'ncnn':
        return NcnnRuntime(path, vulkan=vulkan, threads=threads)
    if kind == 'executorch':
        return ExecuTorchRuntime(path)
    if kind == 'openvino':
        return OpenVinoRuntime(path, threads=threads)
    return TorchRuntime(load_deploy_model(path, opt_path))
