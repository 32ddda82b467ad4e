"""ncnn export through pnnx, with the blob names and storage the SR apps expect.

pnnx traces the network at two input sizes, so the file takes any height and width. Its blobs are renamed to
`data`/`output`, the names Real-ESRGAN-ncnn-vulkan, Upscayl and RealSR-NCNN-Android extract, so one file serves
both our runtime and theirs. pnnx stores fp16 weights unless told otherwise; fp32 is the default here, fp16
(`fp16=True`) is what the apps ship.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from os import path as osp

import torch
from torch import nn

from core.deploy.native_logs import native_output_to_log
from core.deploy.ncnn_param import rename_blobs
from core.deploy.optional import require
from core.deploy.wrappers import NetworkOutput
from core.errors import UserError

INPUT_BLOB, OUTPUT_BLOB = 'data', 'output'


def export_ncnn(net: nn.Module, param_path: str, bin_path: str, num_in_ch: int, fp16: bool = False) -> None:
    """Write `param_path` and `bin_path` (check them with core.deploy.runtime_check)."""
    pnnx = require('pnnx', 'pnnx')
    wrapped = NetworkOutput(net.float().eval())
    first, second = torch.rand(1, num_in_ch, 32, 40), torch.rand(1, num_in_ch, 24, 28)  # two sizes: any H×W
    with tempfile.TemporaryDirectory() as folder:
        traced = osp.join(folder, 'model.pt')
        try:
            with native_output_to_log('pnnx'), warnings.catch_warnings():  # pnnx narrates every pass
                warnings.simplefilter('ignore')
                pnnx.export(wrapped, traced, (first,), (second,), fp16=fp16)
        except Exception as err:  # tracing raises many types; pnnx itself reports through its log
            raise UserError(f'pnnx cannot convert this network: {str(err).splitlines()[0][:300]}') from None
        param = osp.join(folder, 'model.ncnn.param')
        if not osp.isfile(param):
            raise UserError('pnnx wrote no ncnn file for this network (its log is in the export log); '
                            'export to ONNX instead')
        with open(param, encoding='utf-8') as handle:
            text = rename_blobs(handle.read(), {'in0': INPUT_BLOB, 'out0': OUTPUT_BLOB})
        with open(param_path, 'w', encoding='utf-8') as handle:
            handle.write(text)
        shutil.copyfile(osp.join(folder, 'model.ncnn.bin'), bin_path)
