"""Measuring deployable models side by side: the machine (CPU flags, fp32 GEMM peak), MACs, peak RSS, and
latency medians over interleaved rounds, so that load on a shared machine hits every backend alike."""

from __future__ import annotations

import importlib
import platform
import re
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

ISA_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_bf16', 'amx_int8')


@dataclass(frozen=True)
class ModelSpec:
    """One benchmarked network: its deployable form at the size the papers measure."""

    name: str
    arch: str
    args: dict
    psnr: float | None = None  # Set5 Y-PSNR at this scale
    psnr_source: str = ''


# Published figures are the ones docs/families.md cites with their sources; 'measured' ones were computed here.
SPECS = [
    ModelSpec('ETDS-M4C32 x4', 'ETDSForInference', dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=4,
                                                        num_feat=32, num_residual_feat=3),
              29.526, 'measured: the scripts/demo.py model (1000 CPU iterations, not paper training)'),
    ModelSpec('ECBSR-M4C16 x4 (ECBSRT)', 'ECBSRT', dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=4,
                                                        num_feat=16, act_type='prelu')),
    ModelSpec('ECBSR-M4C16 x4 (ECBSRET)', 'ECBSRET', dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=4,
                                                          num_feat=16)),
    ModelSpec('ABPN-M4C28 x4 (ABPN_ET)', 'ABPN_ET', dict(num_feat=28, num_block=4, scale=4)),
    ModelSpec('Plain-M6C32 x4', 'Plain', dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=6, num_feat=32)),
    ModelSpec('ESPCN x4', 'ESPCN', dict(colors=3, upscale=4)),
    ModelSpec('FSRCNN x4', 'FSRCNN', dict(upscale=4)),
    ModelSpec('Bicubic x4', 'Bicubic', dict(upscale=4), 28.431, 'measured: test.py on Set5'),
    ModelSpec('SESR-M5 x2 (Y)', 'SESRInference', dict(num_in_ch=1, num_out_ch=1, upscale=2, m=5, int_features=16,
                                                      relu_act=True),
              37.39, 'published: SESR paper, Table 1'),
    ModelSpec('eSR-TM_s2_K7_C16 x2 (Y)', 'EdgeSR', dict(model_id='eSR-TM_s2_K7_C16')),
    ModelSpec('VDSR x2 (Y)', 'VDSR', dict(upscale=2), 37.53, 'published: VDSR paper'),
    ModelSpec('VDSR 50% pruned x2 (Y)', 'VDSR', dict(upscale=2, widths=[32] * 19)),
    ModelSpec('Bicubic x2', 'Bicubic', dict(upscale=2), 33.678, 'measured: test.py on Set5'),
]


def cpu_description() -> dict:
    """CPU model and the ISA flags int8 and fp32 speed depend on (from lscpu, else /proc/cpuinfo)."""
    try:
        text = subprocess.run(['lscpu'], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = open('/proc/cpuinfo').read()
    model = re.search(r'(?:Model name|model name)\s*:\s*(.+)', text)
    flags = set((re.search(r'(?:Flags|flags)\s*:\s*(.+)', text) or re.search('()', '')).group(1).split())
    return {'model': model.group(1).strip() if model else platform.processor(),
            'isa': {flag: flag in flags for flag in ISA_FLAGS}, 'threads': torch.get_num_threads()}


def _best_seconds(run: Callable[[], object], repeats: int) -> float:
    run()
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def gemm_peaks(size: int = 2048, repeats: int = 7, dtype: torch.dtype = torch.float32,
               onnxruntime: bool = True) -> dict[str, float]:
    """The machine's GEMM throughput now, in FLOP/s: 2048² torch.mm, and onnxruntime's fp32 MatMul (MLAS).

    Both, because they differ by 2× on some CPUs (MKL takes a slow path on AMD); fractions of the peak are
    taken against the faster, which is the stricter measure. A reduced-precision peak (bf16) is torch's alone.
    """
    a, b = torch.rand(size, size, dtype=dtype), torch.rand(size, size, dtype=dtype)
    peaks = {'torch.mm': 2 * size**3 / _best_seconds(lambda: torch.mm(a, b), repeats)}
    if not onnxruntime or dtype != torch.float32:
        return peaks
    try:
        ort = importlib.import_module('onnxruntime')
        helper = importlib.import_module('onnx.helper')
        tensor = importlib.import_module('onnx').TensorProto.FLOAT
        graph = helper.make_graph([helper.make_node('MatMul', ['A', 'B'], ['C'])], 'gemm',
                                  [helper.make_tensor_value_info(n, tensor, [size, size]) for n in 'AB'],
                                  [helper.make_tensor_value_info('C', tensor, [size, size])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)], ir_version=9)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(model.SerializeToString(), options, providers=['CPUExecutionProvider'])
        feed = {'A': a.numpy(), 'B': b.numpy()}
        peaks['onnxruntime MatMul'] = 2 * size**3 / _best_seconds(lambda: session.run(None, feed), repeats)
    except ImportError:
        pass
    return peaks


@torch.inference_mode()
def count_macs(net: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward (torch's FLOP counter counts 2 FLOPs per MAC)."""
    with FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() // 2


def peak_rss_mb() -> float:
    """This process's peak resident set so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def interleaved_medians(runners: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds per runner: one warm-up call each, then `rounds` rounds that call every runner once."""
    for run in runners.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
