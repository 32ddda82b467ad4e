"""Speed and cost of every deployable family, side by side in one run, on this machine.

python scripts/benchmark_models.py                       # all families at 360x640 LR, writes docs/benchmarks/
python scripts/benchmark_models.py --models "ETDS-M4C32 x4" --rounds 3

Each model runs in its own process (so peak RSS is its own), with the machine's fp32 GEMM peak measured in that
same process; its backends (torch eager, channels_last, torch.compile, onnxruntime, LiteRT fp32 and int8, ORT
int8, OpenVINO, ncnn on the CPU and on Vulkan, ExecuTorch fp32 and int8) take turns round by round, so load on a
shared machine slows them alike. Only ratios and fractions of the
peak mean anything across machines. Writes models.json, models.md and psnr_vs_latency.png to --output-dir.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from os import path as osp

from core.cli.arguments import image_size  # standard library only: --help stays instant

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# 'int8 plain' is the quantizer alone (export.py --no-equalize --rounding nearest), timed beside the prepared int8
# (PReLUs split, channels rescaled, GPTQ): the preparation changes widths, so its speed is measured, not assumed.
# 'ncnn vulkan' runs on lavapipe here, Mesa's Vulkan driver on the CPU: a functional check, not a speed.
BACKENDS = ('torch eager', 'torch channels_last', 'torch compile', 'onnxruntime', 'litert fp32', 'openvino', 'ncnn',
            'executorch', 'ncnn vulkan', 'litert int8', 'litert int8 plain', 'ort int8', 'ort int8 plain',
            'executorch int8')
FP32 = BACKENDS[:8]  # the CPU fp32 backends the best fp32 is chosen from


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=None, help='names from the table (default: all)')
    parser.add_argument('--size', type=image_size(8), default='360x640', help='LR input HEIGHTxWIDTH (default 360x640)')
    parser.add_argument('--rounds', type=int, default=5, help='timed rounds after one warm-up (default 5)')
    parser.add_argument('--threads', type=int, default=2, help='threads for every backend (default 2)')
    parser.add_argument('--output-dir', default=osp.join(ROOT, 'docs', 'benchmarks'))
    parser.add_argument('--render', default=None, metavar='JSON',
                        help='redraw the table and plot from an earlier models.json (PSNR figures from the current '
                             'table) without measuring')
    parser.add_argument('--one', default=None, help=argparse.SUPPRESS)  # internal: measure one model, print JSON
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.threads < 1:
        parser.error('--rounds and --threads must be at least 1')
    return args


def _torch_runners(net, xt) -> tuple[dict, dict, float]:
    """Eager, channels_last and compiled (frozen weights) forwards; (runners, outputs, compile seconds)."""
    import copy
    import time

    import torch
    import torch._inductor.config as inductor_config

    net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)  # own copies: the exports need `net` as is
    x_cl = xt.to(memory_format=torch.channels_last)
    inductor_config.freezing = True  # constant-fold the weights into the compiled graph (inference only)
    compiled = torch.compile(copy.deepcopy(net))
    runners, outputs = {}, {}
    with torch.inference_mode():
        runners['torch eager'] = lambda: net(xt)
        runners['torch channels_last'] = lambda: net_cl(x_cl)
        outputs['torch channels_last'] = net_cl(x_cl).numpy()
        start = time.perf_counter()
        outputs['torch compile'] = compiled(xt).numpy()
        seconds = time.perf_counter() - start
        runners['torch compile'] = lambda: compiled(xt)
    return runners, outputs, seconds


def _exported_runners(model, x, size: tuple[int, int], threads: int, folder: str,
                      notes: dict) -> tuple[dict, dict]:
    """Each file format exported into `folder` and run by its runtime; a format that fails leaves a note."""
    import numpy as np

    from core.deploy.export import check_image, export_model
    from core.deploy.runtimes import TFLiteRuntime, open_runtime
    from core.errors import UserError

    calibration = [check_image(model.num_in_ch, size)]
    small = [np.ascontiguousarray(x[:, :, :128, :128]), np.ascontiguousarray(x[:, :, -128:, -128:])]
    plain = {'equalized': False, 'rounding': 'nearest'}
    exports = {'onnxruntime': ('onnx', 'm.onnx', None, {}), 'litert fp32': ('tflite', 'f.tflite', None, {}),
               'litert int8': ('tflite-int8', 'q.tflite', calibration, {}),
               'litert int8 plain': ('tflite-int8', 'p.tflite', calibration, plain),
               'ort int8': ('onnx-int8', 'q.onnx', small, {}),
               'ort int8 plain': ('onnx-int8', 'p.onnx', small, plain),
               'openvino': ('openvino', 'm.xml', None, {}), 'ncnn': ('ncnn', 'm.param', None, {}),
               'ncnn vulkan': ('ncnn', 'm.param', None, {}), 'executorch': ('executorch', 'f.pte', None, {}),
               'executorch int8': ('executorch-int8', 'q.pte', calibration, {})}
    runners, outputs = {}, {}
    for backend, (fmt, file, calib, int8_options) in exports.items():
        path = osp.join(folder, file)
        try:
            # timing, not shipping: keep every file and record its difference (max_abs_diff in the JSON)
            if not osp.exists(path):  # ncnn vulkan runs the ncnn file
                export_model(model, fmt, path, size=size, calibration=calib, tolerance=1e-4,
                             int8_tolerance=float('inf'), **int8_options)
            runtime = (TFLiteRuntime(path, threads=threads) if fmt.startswith('tflite') else
                       open_runtime(path, threads=threads, vulkan=backend == 'ncnn vulkan'))
        except UserError as err:
            notes[backend] = str(err)
            continue
        if fmt.startswith('tflite'):  # time what the device runs: its own (int8 or float) tensors, no conversion
            runners[backend] = (lambda r, v: lambda: r.invoke(v))(runtime, runtime.to_file_input(x))
        else:
            runners[backend] = (lambda r: lambda: r(x))(runtime)
        outputs[backend] = runtime(x)
    return runners, outputs


def measure_one(name: str, size: tuple[int, int], rounds: int, threads: int) -> dict:
    """Every backend of one model, in this process: MACs, RSS, export checks, interleaved latency medians."""
    import numpy as np
    import torch

    import core.plugin  # noqa: F401
    from core.archs.cost import count_macs
    from core.deploy.benchmark_specs import SPECS
    from core.deploy.benchmarking import gemm_peaks, interleaved_medians, peak_rss_mb
    from core.deploy.export import check_image
    from core.deploy.model import build_deployable

    torch.set_num_threads(threads)
    torch.manual_seed(0)  # the same weights in every run, so export checks and int8 errors are reproducible
    spec = next(s for s in SPECS if s.name == name)
    model = build_deployable(spec.arch, spec.args)
    x = check_image(model.num_in_ch, size)
    xt = torch.from_numpy(x)
    result = {'name': name, 'arch': spec.arch, 'args': spec.args, 'scale': model.scale, 'psnr': spec.psnr,
              'psnr_source': spec.psnr_source, 'params': sum(p.numel() for p in model.net.parameters()),
              'macs': count_macs(model.net, tuple(xt.shape)), 'input': list(size), 'notes': {}}
    with torch.inference_mode():
        reference = model.net(xt).numpy()
    result['peak_rss_mb'] = peak_rss_mb()  # torch fp32, one whole-frame inference, before any other backend
    runners, outputs, result['compile_seconds'] = _torch_runners(model.net, xt)
    with tempfile.TemporaryDirectory() as folder:
        exported, exported_outputs = _exported_runners(model, x, size, threads, folder, result['notes'])
        runners |= exported
        outputs |= exported_outputs
        before = gemm_peaks()
        with torch.inference_mode():
            medians = interleaved_medians(runners, rounds)
        after = gemm_peaks()  # before and after the rounds: the better of the two, for each GEMM
    peaks = {name: max(before[name], after[name]) for name in before}
    peak = max(peaks.values())
    result['gemm_peaks_flops'] = peaks
    result['latency_s'] = medians
    result['max_abs_diff'] = {b: float(np.abs(out - reference).max()) for b, out in outputs.items()}
    result['peak_fraction'] = {b: 2 * result['macs'] / t / peak for b, t in medians.items()}
    return result


def run_all(args: argparse.Namespace) -> list[dict]:
    from tqdm import tqdm

    from core.deploy.benchmark_specs import SPECS

    names = args.models or [s.name for s in SPECS]
    unknown = sorted(set(names) - {s.name for s in SPECS})
    if unknown:
        raise SystemExit(f"error: unknown --models {', '.join(unknown)}; choose from: "
                         + ', '.join(s.name for s in SPECS))
    results = []
    for name in tqdm(names, desc='models', unit='model'):
        command = [sys.executable, __file__, '--one', name, '--size', f'{args.size[0]}x{args.size[1]}',
                   '--rounds', str(args.rounds), '--threads', str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith('{')]
        if done.returncode != 0 or not lines:
            tqdm.write(f'{name}: failed ({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"})')
            continue
        results.append(json.loads(lines[-1]))
        best = min(FP32, key=lambda b: results[-1]['latency_s'].get(b, float('inf')))
        tqdm.write(f"{name}: best fp32 {best} {results[-1]['latency_s'][best] * 1000:.1f} ms "
                   f"({results[-1]['peak_fraction'][best]:.2f} of the GEMM peak)")
    return results


def markdown_table(results: list[dict], machine: dict) -> str:
    isa = ', '.join(f for f, on in machine['isa'].items() if on) or 'none of ' + ', '.join(machine['isa'])
    peaks = '; '.join(f"{name} {statistics.median(r['gemm_peaks_flops'][name] for r in results) / 1e9:.0f}"
                      for name in results[0]['gemm_peaks_flops'])
    lines = [f"Machine: {machine['model']}, {machine['threads']} threads; ISA: {isa}. "
             f"Input {results[0]['input'][0]}×{results[0]['input'][1]} LR, batch 1. Latency in ms (median of "
             'interleaved rounds); in brackets, the fraction of the fp32 GEMM peak measured in the same process: '
             f'the faster of two 2048² GEMMs (medians over the processes, GFLOP/s: {peaks}). '
             'int8 columns are not counted against the fp32 peak; ncnn vulkan runs on lavapipe (Mesa\'s Vulkan on '
             'the CPU) here, a functional check, not a speed.', '',
             '| model | params | GMACs | peak RSS (MB) | ' + ' | '.join(BACKENDS)
             + ' | best fp32 | best fp32 vs torch.mm alone | Set5 Y-PSNR |',
             '| --- | ---: | ---: | ---: | ' + ' | '.join('---:' for _ in BACKENDS) + ' | --- | ---: | --- |']
    for r in results:
        cells = []
        for backend in BACKENDS:
            if backend not in r['latency_s']:
                cells.append('n/a')
                continue
            ms = r['latency_s'][backend] * 1000
            counted = backend in FP32  # int8 and lavapipe (Vulkan on the CPU) are not held to the fp32 peak
            cells.append(f"{ms:.1f}" + (f" ({r['peak_fraction'][backend]:.2f})" if counted else ''))
        best = min(FP32, key=lambda b: r['latency_s'].get(b, float('inf')))
        psnr = f"{r['psnr']:.3f} ({r['psnr_source'].split(':')[0]})" if r['psnr'] else '—'
        versus_mm = 2 * r['macs'] / r['latency_s'][best] / r['gemm_peaks_flops']['torch.mm']
        lines.append(f"| {r['name']} | {r['params']:,} | {r['macs'] / 1e9:.2f} | {r['peak_rss_mb']:.0f} | "
                     + ' | '.join(cells) + f' | {best} | {versus_mm:.2f} | {psnr} |')
    notes = [f"- {r['name']}, {b}: {n}" for r in results for b, n in r['notes'].items()]
    if notes:
        lines += ['', 'Notes (backends that could not run a model, rows measured again):', *notes]
    return '\n'.join(lines) + '\n'


def plot(results: list[dict], machine: dict, path: str) -> None:
    """Set5 Y-PSNR against the best fp32 latency, one marker per model with a figure, in the ETDS paper's manner."""
    import math

    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, scale in zip(axes, (4, 2), strict=True):
        latencies = []
        for r in (r for r in results if r['scale'] == scale and r['psnr']):
            best = min(FP32, key=lambda b: r['latency_s'].get(b, float('inf')))
            ms = r['latency_s'][best] * 1000
            latencies.append(ms)
            measured = r['psnr_source'].startswith('measured')
            ax.scatter(ms, r['psnr'], s=25 + 25 * math.log10(1 + r['macs'] / 1e9), marker='o' if measured else 's')
            ax.annotate(f"{r['name']}, {best}\n{r['psnr_source'].split(':')[0]}", (ms, r['psnr']), fontsize=7,
                        xytext=(5, -4), textcoords='offset points')
        ax.set_xscale('log')
        short_range = bool(latencies) and max(latencies) / min(latencies) < 100
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if short_range else (1.0,)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.margins(x=0.35, y=0.15)
        ax.set_xlabel(f"best fp32 latency, ms ({results[0]['input'][0]}×{results[0]['input'][1]} LR input, log scale)")
        ax.set_ylabel('Set5 Y-PSNR (dB)')
        ax.set_title(f'x{scale}')
        ax.grid(alpha=0.3)
    fig.suptitle(f"PSNR vs latency on {machine['model']} ({machine['threads']} threads); circles measured here, "
                 'squares published; marker area grows with MACs', fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_outputs(results: list[dict], machine: dict, output_dir: str) -> str:
    from core.io.staging import staged_file

    table = markdown_table(results, machine)
    with staged_file(osp.join(output_dir, 'models.json')) as tmp, open(tmp, 'w') as handle:
        json.dump({'machine': machine, 'results': results}, handle, indent=1)
    with staged_file(osp.join(output_dir, 'models.md')) as tmp, open(tmp, 'w') as handle:
        handle.write(table)
    with staged_file(osp.join(output_dir, 'psnr_vs_latency.png')) as tmp:
        plot(results, machine, tmp)
    return table


def main() -> None:
    args = parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.size, args.rounds, args.threads)))
        return
    import torch

    import core.plugin  # noqa: F401
    from core.deploy.benchmark_specs import SPECS
    from core.deploy.benchmarking import cpu_description

    if args.render:
        with open(args.render) as handle:
            saved = json.load(handle)
        psnr = {spec.name: (spec.psnr, spec.psnr_source) for spec in SPECS}
        for r in saved['results']:
            r['psnr'], r['psnr_source'] = psnr.get(r['name'], (r['psnr'], r['psnr_source']))
        print(write_outputs(saved['results'], saved['machine'], args.output_dir))
        return
    torch.set_num_threads(args.threads)
    machine = cpu_description()
    print(f"CPU: {machine['model']}; ISA flags: " + ', '.join(f'{f}={"yes" if on else "no"}'
                                                              for f, on in machine['isa'].items()))
    results = run_all(args)
    if not results:
        raise SystemExit('error: no model could be measured')
    print('\n' + write_outputs(results, machine, args.output_dir))
    print(f'wrote models.json, models.md and psnr_vs_latency.png to {args.output_dir}')


if __name__ == '__main__':
    main()
