"""Measuring side by side: the machine (CPU flags, fp32 GEMM peak), peak RSS, and latency medians over interleaved
rounds, so that load on a shared machine hits every backend alike (torch.utils.benchmark.Timer times one statement
at a time, which is why the rounds are ours)."""

from __future__ import annotations

import importlib
import platform
import re
import resource
import statistics
import subprocess
import time
from collections.abc import Callable

import torch

ISA_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_bf16', 'amx_int8')


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
