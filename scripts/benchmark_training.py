"""Training-step time of each family's reference form and its fast form, measured side by side in one run.

python scripts/benchmark_training.py --family etds     # ETDS-M4C32 x4, batch 8, LR 64²: dual stream vs fused
python scripts/benchmark_training.py --family ecbsr    # ECBSR-M4C16 x4, batch 8: five branches vs collapsed ECB
python scripts/benchmark_training.py --family sesr     # SESR-M5 x2 on Y, batch 32: expanded vs collapsed blocks
python scripts/benchmark_training.py --family plain    # Plain-M6C32, ESPCN, FSRCNN x4 (one form each)

Both forms start from the same weights; rounds alternate between them so machine noise hits both alike. A step is
forward, loss, backward and an Adam step, as IRModel runs it. The achieved rate counts fwd + bwd as 3× the forward's
multiply-accumulates, against the machine's fp32 GEMM peak measured in the same run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

FAMILIES = ('etds', 'ecbsr', 'sesr', 'plain')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--family', choices=FAMILIES, default='etds')
    parser.add_argument('--lq-size', type=int, default=64)
    parser.add_argument('--rounds', type=int, default=None, help='alternating rounds (default per family)')
    return parser.parse_args()


def benchmarks(family: str) -> tuple[str, int, int, int, int, dict[str, Callable]]:
    """(title, batch, scale, channels, rounds, {form name: builder}); the first form is the reference."""
    from core.archs.baselines_arch import ESPCN, FSRCNN, Plain
    from core.archs.ecbsr_arch import ECBSR
    from core.archs.etds_arch import ETDS
    from core.archs.sesr_arch import SESR

    def etds(fused: bool):
        net = ETDS(3, 3, 4, 4, 32, 3)
        net.fused = fused
        return net

    if family == 'etds':
        return 'ETDS-M4C32 x4', 8, 4, 3, 25, {'dual stream': lambda: etds(False), 'fused': lambda: etds(True)}
    if family == 'ecbsr':
        return 'ECBSR-M4C16 x4', 8, 4, 3, 5, {'branch': lambda: ECBSR(3, 3, 4, 4, 16, 'prelu'),
                                              'collapsed': lambda: ECBSR(3, 3, 4, 4, 16, 'prelu', collapsed=True)}
    if family == 'sesr':
        return 'SESR-M5 x2 (on Y, as its authors)', 32, 2, 1, 3, {
            'expanded': lambda: SESR(1, 1, 2, 5, 16, 256, 'expanded'),
            'collapsed': lambda: SESR(1, 1, 2, 5, 16, 256, 'collapsed')}
    return 'plain baselines x4', 8, 4, 3, 5, {'Plain-M6C32': lambda: Plain(3, 3, 4, 6, 32),
                                              'ESPCN': lambda: ESPCN(3, 4), 'FSRCNN': lambda: FSRCNN(4)}


def main() -> None:
    args = parse_args()  # before torch loads, so --help is instant
    import torch
    from torch.nn import functional as F

    import core  # noqa: F401  (registers everything into basicsr)
    from core.archs.network import first_output
    from core.deploy.benchmarking import count_macs, cpu_description, gemm_peaks, interleaved_medians

    title, batch, scale, channels, rounds, builders = benchmarks(args.family)
    rounds = args.rounds or rounds
    torch.manual_seed(0)
    nets = {name: build().train() for name, build in builders.items()}
    names = list(nets)
    reference = nets[names[0]]
    for net in list(nets.values())[1:]:  # the fast form of the same weights (a family of baselines: its own)
        if net.state_dict().keys() == reference.state_dict().keys():
            net.load_state_dict(reference.state_dict())
    lq = torch.rand(batch, channels, args.lq_size, args.lq_size)
    gt = torch.rand(batch, channels, args.lq_size * scale, args.lq_size * scale)

    def loss_of(output) -> torch.Tensor:
        if isinstance(output, tuple):  # ETDS: SR and residual image, as ETDSModel weighs them
            return F.l1_loss(output[0], gt) + 0.5 * F.l1_loss(output[1], gt)
        return F.l1_loss(output, gt)

    def make_step(net: torch.nn.Module) -> Callable[[], None]:
        optimizer = torch.optim.Adam(net.parameters(), lr=5e-4, foreach=True)  # as IRModel builds it

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            loss_of(net(lq)).backward()
            optimizer.step()

        return step

    cpu = cpu_description()
    print(f"{cpu['model']}, {cpu['threads']} threads; ISA: "
          + ' '.join(flag for flag, present in cpu['isa'].items() if present))
    peaks = gemm_peaks()
    peak = max(peaks.values())
    print('fp32 GEMM peak (2048²): ' + ', '.join(f'{k} {v / 1e9:.1f} GFLOP/s' for k, v in peaks.items()))
    with torch.no_grad():
        outputs = [first_output(net(lq[:2])) for net in nets.values()]
    same = (outputs[0] - outputs[1]).abs().max().item() if len(outputs) == 2 else None
    medians = interleaved_medians({name: make_step(net) for name, net in nets.items()}, rounds)
    print(f'{title}, batch {batch}, LR {args.lq_size}x{args.lq_size}, {rounds} alternating rounds'
          + ('' if same is None else f'; outputs agree to {same:.1e}'))
    for name, net in nets.items():
        macs = count_macs(net, lq)
        rate = 3 * macs * 2 / medians[name]  # FLOP/s of fwd + bwd
        print(f'  {name:<12} {medians[name] * 1000:8.1f} ms/step  {macs / 1e9:6.2f} GMAC/forward  '
              f'{rate / 1e9:6.1f} GFLOP/s = {rate / peak:.2f} of the peak')
    if len(names) == 2:
        print(f'  {names[1]} is {medians[names[0]] / medians[names[1]]:.2f}x faster per training step than '
              f'{names[0]}')


if __name__ == '__main__':
    main()
