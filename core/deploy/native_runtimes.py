"""The runtimes apps ship, driven from Python with the toolkit's NCHW float32 [0, 1] convention:
ncnn (CPU, or Vulkan as Real-ESRGAN-ncnn-vulkan runs it), ExecuTorch with XNNPACK, and OpenVINO on the CPU."""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from core.deploy.file_metadata import META_KEY, META_METHODS
from core.deploy.native_logs import native_output_to_log
from core.deploy.ncnn_param import input_channels, parse_layers, receptive_radius
from core.deploy.optional import require
from core.errors import UserError
from core.io.formats import weights_file


@dataclass
class NcnnRuntime:
    """A .param/.bin pair. CPU: fp32 storage and arithmetic, so it matches torch; Vulkan: fp16 storage and fp32
    arithmetic, the options Real-ESRGAN-ncnn-vulkan sets (ncnn's own default also computes in fp16);
    `fp16` asks for fp16 storage on the CPU too."""

    path: str
    vulkan: bool = False
    fp16: bool = False
    threads: int | None = None
    fixed_size: tuple[int, int] | None = None  # pnnx files take any size
    max_size: tuple[int, int] | None = None
    name: str = field(init=False)

    def __post_init__(self) -> None:
        ncnn = require('ncnn', 'ncnn')
        self._ncnn = ncnn
        self.name = 'ncnn-vulkan' if self.vulkan else 'ncnn'
        weights = weights_file(self.path)
        if not os.path.isfile(weights):
            raise UserError(f'{self.path} needs {weights} beside it (ncnn keeps the weights there)')
        with open(self.path, encoding='utf-8') as handle:
            text = handle.read()
        try:
            layers = parse_layers(text)
        except ValueError as err:
            raise UserError(f'{self.path}: {err}') from None
        self.radius = receptive_radius(text)
        inputs = [layer.tops[0] for layer in layers if layer.type == 'Input']
        consumed = {blob for layer in layers for blob in layer.bottoms}
        outputs = [blob for layer in layers for blob in layer.tops if blob not in consumed]
        if len(inputs) != 1 or len(outputs) != 1:
            raise UserError(f'{self.path} has {len(inputs)} inputs and {len(outputs)} outputs; an SR model has one '
                            'of each')
        self.input_blob, self.output_blob = inputs[0], outputs[0]
        with native_output_to_log('ncnn'):  # the Vulkan device report
            if self.vulkan and ncnn.get_gpu_count() == 0:
                raise UserError('ncnn finds no Vulkan device; install a Vulkan driver (Debian: mesa-vulkan-drivers) '
                                'or use --backend ncnn')
            self.net = ncnn.Net()
            self.net.opt.use_vulkan_compute = self.vulkan
            fp16_storage = self.vulkan or self.fp16  # the apps store fp16 on the GPU but compute in fp32
            self.net.opt.use_fp16_storage = fp16_storage
            self.net.opt.use_fp16_packed = fp16_storage
            self.net.opt.use_fp16_arithmetic = False
            self.net.opt.use_bf16_storage = False
            self.net.opt.num_threads = self.threads or os.cpu_count()
            if self.net.load_param(self.path) != 0 or self.net.load_model(weights) != 0:
                raise UserError(f'ncnn cannot load {self.path} with {weights}; re-export them together')
        self.num_in_ch = input_channels(layers, self.input_blob) or 3  # no conv reads it: the apps' RGB
        self.scale = self(np.zeros((1, self.num_in_ch, 8, 8), np.float32)).shape[-1] // 8

    def __call__(self, x: np.ndarray) -> np.ndarray:
        outputs = []
        for image in np.ascontiguousarray(x, np.float32):
            # ncnn.Mat wraps the array's memory without holding a reference: `image` must outlive the copy
            extractor = self.net.create_extractor()
            extractor.input(self.input_blob, self._ncnn.Mat(image).clone())
            status, out = extractor.extract(self.output_blob)
            if status != 0:
                raise UserError(f'ncnn failed on a {image.shape[1]}x{image.shape[2]} input (status {status})')
            array = np.array(out, dtype=np.float32)
            outputs.append(array.reshape(-1, *array.shape[-2:]))  # a one-channel Mat comes back as H×W
        return np.stack(outputs)


@dataclass
class ExecuTorchRuntime:
    """A .pte program: any input size up to its bound (`max_size`), meta read from its constant methods."""

    path: str
    name: str = 'executorch'
    fixed_size: tuple[int, int] | None = None  # any size up to max_size

    def __post_init__(self) -> None:
        runtime_module = require('executorch.runtime', 'executorch')
        try:
            with native_output_to_log('executorch'):  # cpuinfo's "midr" notices
                self.program = runtime_module.Runtime.get().load_program(self.path)
                self.method = self.program.load_method('forward')
                meta = {name: int(self.program.load_method(name).execute([])[0])
                        for name in META_METHODS if name in self.program.method_names}
        except RuntimeError as err:  # the runtime reports a bad or unsupported program this way
            raise UserError(f'ExecuTorch cannot load {self.path}: {err}') from None
        self.meta = meta
        shape = tuple(self.method.metadata.input_tensor_meta(0).sizes())
        self.num_in_ch, self.max_size = int(shape[1]), (int(shape[2]), int(shape[3]))  # the program's bound
        self.scale = meta.get('scale') or self(np.zeros((1, self.num_in_ch, 8, 8), np.float32)).shape[-1] // 8
        self.radius = meta.get('radius')

    def __call__(self, x: np.ndarray) -> np.ndarray:
        outputs = []
        for image in x:  # the program's batch is 1; canonical strides (numpy may give size-1 dimensions 0)
            tensor = torch.from_numpy(np.ascontiguousarray(image[None], np.float32))
            out = self.method.execute([tensor.clone(memory_format=torch.contiguous_format)])[0]
            outputs.append(out.numpy().copy())  # the runtime reuses its output buffer
        return np.concatenate(outputs)


@dataclass
class OpenVinoRuntime:
    """An OpenVINO IR (.xml/.bin) on the CPU in fp32 (OpenVINO may otherwise pick bf16 on AMX/AVX-512 CPUs)."""

    path: str
    name: str = 'openvino'
    threads: int | None = None
    fixed_size: tuple[int, int] | None = None
    max_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        ov = require('openvino', 'openvino')
        weights = weights_file(self.path)
        if self.path.endswith('.xml') and not os.path.isfile(weights):
            raise UserError(f'{self.path} needs {weights} beside it (OpenVINO keeps the weights there)')
        self.core = ov.Core()
        model = self.core.read_model(self.path)
        self.meta = json.loads(model.get_rt_info([META_KEY]).astype(str)) if model.has_rt_info([META_KEY]) else {}
        self.config = {'INFERENCE_PRECISION_HINT': 'f32'}
        if self.threads:
            self.config['INFERENCE_NUM_THREADS'] = self.threads
        self.requests: OrderedDict[tuple[int, ...], object] = OrderedDict()
        self.num_in_ch = int(model.inputs[0].get_partial_shape()[1].get_length())
        self.scale = int(self.meta['scale']) if 'scale' in self.meta else (
            self(np.zeros((1, self.num_in_ch, 8, 8), np.float32)).shape[-1] // 8)
        self.radius = self.meta.get('radius')

    def _request(self, shape: tuple[int, ...]):
        """A request compiled for this input shape: OpenVINO's static-shape kernels ran 5% faster than its dynamic
        ones here (ETDS-M4C32 x4, 360×640). Tiling gives a few shapes per image; the last eight are kept."""
        if shape not in self.requests:
            model = self.core.read_model(self.path)
            model.reshape(list(shape))
            self.requests[shape] = self.core.compile_model(model, 'CPU', self.config).create_infer_request()
            if len(self.requests) > 8:
                self.requests.popitem(last=False)
        self.requests.move_to_end(shape)
        return self.requests[shape]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        return np.array(self._request(x.shape).infer([x])[0], dtype=np.float32)
