"""Training-step time of each family's reference form and its fast forms, measured side by side in one run.

python scripts/benchmark_training.py --family etds     # ETDS-M4C32 x4, batch 8, LR 64²: dual stream vs fused
python scripts/benchmark_training.py --family ecbsr    # ECBSR-M4C16 x4, batch 8: five branches vs collapsed ECB
python scripts/benchmark_training.py --family sesr     # SESR-M5 x2 on Y, batch 32: expanded vs collapsed blocks
python scripts/benchmark_training.py --family plain    # Plain-M6C32, ESPCN, FSRCNN x4: eager vs compiled

Every form starts from the same weights; rounds alternate between forms so machine noise hits them alike. A step is
what IRModel runs: forward (compiled and autocast as the form's `train:` switches say), fp32 losses, backward and
an Adam step (`fused: true` where the form says so). A network's first row is the reference; its other rows are
compared to it. The achieved rate counts fwd + bwd as 3× the forward's multiply-accumulates, against the machine's
GEMM peak in the form's precision, measured in the same run. torch.compile's first step (compiling, with an empty
cache) is timed apart.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

FAMILIES = ('etds', 'ecbsr', 'sesr', 'plain')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--family', choices=FAMILIES, default='etds')
    parser.add_argument('--lq-size', type=int, default=64)
    parser.add_argument('--rounds', type=int, default=None, help='alternating rounds (default per family)')
    parser.add_argument('--no-compile', action='store_true', help='skip the compiled forms (about 15 s each)')
    return parser.parse_args()


@dataclass(frozen=True)
class Form:
    """One way to train a network: how it is built and which `train:` switches the step uses."""

    build: Callable
    compile: bool = False
    amp: str | None = None
    fused_adam: bool = False


def fast_forms(name: str, build: Callable, bf16: bool = True) -> dict[str, Form]:
    """A fast form as it is, compiled with fused Adam, and (bf16) also autocast in bfloat16."""
    forms = {name: Form(build), f'{name} +compile +fused Adam': Form(build, compile=True, fused_adam=True)}
    if bf16:
        forms[f'{name} +compile +bf16'] = Form(build, compile=True, amp='bf16', fused_adam=True)
    return forms


def benchmarks(family: str) -> tuple[str, int, int, int, int, dict[str, Form]]:
    """(title, batch, scale, channels, rounds, {form name: form}); a network's first form is its reference."""
    from core.archs.baselines_arch import ESPCN, FSRCNN, Plain
    from core.archs.ecbsr_arch import ECBSR
    from core.archs.etds_arch import ETDS
    from core.archs.sesr_arch import SESR

    def etds(fused: bool):
        net = ETDS(3, 3, 4, 4, 32, 3)
        net.fused = fused
        return net

    def ecbsr(collapsed: bool):
        return ECBSR(3, 3, 4, 4, 16, 'prelu', collapsed=collapsed)

    def sesr(kind: str):
        return SESR(1, 1, 2, 5, 16, 256, kind)

    if family == 'etds':
        return 'ETDS-M4C32 x4', 8, 4, 3, 25, {'dual stream': Form(lambda: etds(False)),
                                             **fast_forms('fused', lambda: etds(True))}
    if family == 'ecbsr':
        return 'ECBSR-M4C16 x4', 8, 4, 3, 7, {'branch': Form(lambda: ecbsr(False)),
                                              **fast_forms('collapsed', lambda: ecbsr(True))}
    if family == 'sesr':
        return 'SESR-M5 x2 (on Y, as its authors)', 32, 2, 1, 3, {
            'expanded': Form(lambda: sesr('expanded')),
            **fast_forms('collapsed', lambda: sesr('collapsed'), bf16=False)}
    forms: dict[str, Form] = {}
    for name, build in (('Plain-M6C32', lambda: Plain(3, 3, 4, 6, 32)), ('ESPCN', lambda: ESPCN(3, 4)),
                        ('FSRCNN', lambda: FSRCNN(4))):
        forms |= fast_forms(name, build, bf16=False)
    return 'plain baselines x4', 8, 4, 3, 5, forms


def main() -> None:
    args = parse_args()  # before torch loads, so --help is instant
    with tempfile.TemporaryDirectory(prefix='inductor_cold_') as cache:
        os.environ['TORCHINDUCTOR_CACHE_DIR'] = cache  # compile times as a first run sees them, not a warm cache
        measure(args)


def _same_weights(forms: dict[str, Form]) -> tuple[dict, dict[str, str]]:
    """The networks, each form of a network starting from its first form's weights, and that form's name."""
    import torch

    torch.manual_seed(0)
    nets = {name: form.build().train() for name, form in forms.items()}
    reference = {}  # form name -> the name of the first form of the same network, whose weights it takes
    for name, net in nets.items():
        keys = net.state_dict().keys()
        reference[name] = next(other for other in nets if nets[other].state_dict().keys() == keys)
        net.load_state_dict(nets[reference[name]].state_dict())
    return nets, reference


def _training_step(net, form: Form, lq, gt) -> Callable[[], None]:
    """IRModel.optimize_parameters, without a model object around it."""
    import torch
    from torch.nn import functional as F

    from core.training.models.fast_step import StepOptions, float_outputs

    options = StepOptions(form.compile, form.amp)
    # as IRModel.get_optimizer builds it: multi-tensor unless fused
    kind = {'fused': True} if form.fused_adam else {'foreach': True}
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4, **kind)
    forward = torch.compile(net) if form.compile else net

    def loss_of(output) -> torch.Tensor:
        if isinstance(output, tuple):  # ETDS: SR and residual image, as ETDSModel weighs them
            return F.l1_loss(output[0], gt) + 0.5 * F.l1_loss(output[1], gt)
        return F.l1_loss(output, gt)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with options.autocast(torch.device('cpu')):
            output = forward(lq)
        loss_of(float_outputs(output)).backward()
        optimizer.step()

    return step


def _machine_peaks(forms: dict[str, Form]) -> dict:
    """Print the CPU and its GEMM peaks (fp32, and each autocast dtype the forms use); {amp: FLOP/s}."""
    from core.deploy.benchmarking import cpu_description, gemm_peaks
    from core.training.models.fast_step import AMP_DTYPES

    cpu = cpu_description()
    print(f"{cpu['model']}, {cpu['threads']} threads; ISA: "
          + ' '.join(flag for flag, present in cpu['isa'].items() if present))
    peaks = gemm_peaks()
    peak = {None: max(peaks.values())}
    print('fp32 GEMM peak (2048²): ' + ', '.join(f'{k} {v / 1e9:.1f} GFLOP/s' for k, v in peaks.items()))
    for amp in sorted({form.amp for form in forms.values()} - {None}):
        peak[amp] = gemm_peaks(dtype=AMP_DTYPES[amp], onnxruntime=False)['torch.mm']
        print(f'{amp} GEMM peak (2048², torch.mm): {peak[amp] / 1e9:.1f} GFLOP/s')
    return peak


def measure(args: argparse.Namespace) -> None:
    import torch

    import core.plugin  # noqa: F401  (registers everything into basicsr)
    from core.archs.cost import count_macs
    from core.archs.network import first_output
    from core.deploy.benchmarking import interleaved_medians
    from core.training.models.fast_step import StepOptions

    title, batch, scale, channels, rounds, forms = benchmarks(args.family)
    if args.no_compile:
        forms = {name: form for name, form in forms.items() if not form.compile}
    rounds = args.rounds or rounds
    nets, reference = _same_weights(forms)
    lq = torch.rand(batch, channels, args.lq_size, args.lq_size)
    gt = torch.rand(batch, channels, args.lq_size * scale, args.lq_size * scale)
    peak = _machine_peaks(forms)
    outputs, macs = {}, {}
    for name, form in forms.items():  # before any step changes the weights
        with torch.no_grad(), StepOptions(amp=form.amp).autocast(torch.device('cpu')):
            outputs[name] = first_output(nets[name](lq[:2])).float()
        macs[name] = count_macs(nets[name], tuple(lq.shape))
    steps, compile_seconds = {}, {}
    for name, form in forms.items():
        steps[name] = _training_step(nets[name], form, lq, gt)
        if form.compile:
            start = time.perf_counter()
            steps[name]()
            compile_seconds[name] = time.perf_counter() - start
    medians = interleaved_medians(steps, rounds)
    print(f'{title}, batch {batch}, LR {args.lq_size}x{args.lq_size}, {rounds} alternating rounds')
    for name, form in forms.items():
        rate = 3 * macs[name] * 2 / medians[name]  # FLOP/s of fwd + bwd
        agree = (outputs[name] - outputs[reference[name]]).abs().max().item()
        # the eager forward of the form (autocast included) against its reference; compiled forms are checked by
        # tests/training/test_fast_step.py, and a form whose forward is the reference's prints nothing here
        notes = [f'outputs agree to {agree:.1e}'] if agree > 0 else []
        if name in compile_seconds:
            notes.append(f'first step {compile_seconds[name]:.1f} s (compiling)')
        speedup, gmacs = medians[reference[name]] / medians[name], macs[name] / 1e9
        print(f'  {name:<32} {medians[name] * 1000:8.1f} ms/step {speedup:6.2f}x  {gmacs:6.2f} GMAC/forward  '
              f'{rate / 1e9:6.1f} GFLOP/s = {rate / peak[form.amp]:.2f} of the {form.amp or "fp32"} peak'
              + (f'  ({"; ".join(notes)})' if notes else ''))
    for base in dict.fromkeys(reference.values()):
        variants = [name for name in forms if reference[name] == base]
        if len(variants) > 1:
            fastest = min(variants, key=medians.get)
            print(f'  fastest: {fastest}, {medians[base] / medians[fastest]:.2f}x the {base} step')


if __name__ == '__main__':
    main()
