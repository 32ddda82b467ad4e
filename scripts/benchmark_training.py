"""Training-step time of collapsed vs expanded (branch) training, measured side by side in one run.

python scripts/benchmark_training.py                 # ECBSR-M4C16 x4, batch 8, LR 64×64 (collapsed ECB vs branches)
python scripts/benchmark_training.py --family sesr    # SESR-M5 x2, batch 32, LR 64×64 (collapsed vs expanded blocks)

Both networks start from the same weights; rounds alternate between them so machine noise hits both alike.
"""

import argparse
import statistics
import time

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import core  # noqa: F401  (registers everything into basicsr)
from core.archs.ecbsr_arch import ECBSR
from core.archs.sesr_arch import SESR

FAMILIES = {
    'ecbsr': dict(title='ECBSR-M4C16 x4', batch=8, scale=4, rounds=5, steps=4, channels=3,
                  build=lambda fast: ECBSR(3, 3, 4, 4, 16, 'prelu', collapsed=fast),
                  names=('branch', 'collapsed')),
    'sesr': dict(title='SESR-M5 x2 (on Y, as its authors)', batch=32, scale=2, rounds=3, steps=2, channels=1,
                 build=lambda fast: SESR(1, 1, 2, 5, 16, 256, 'collapsed' if fast else 'expanded'),
                 names=('expanded', 'collapsed')),
}


def forward_macs(net: torch.nn.Module, x: torch.Tensor) -> float:
    """Multiply-accumulates of one forward pass, from torch's own FLOP counter (2 FLOPs per MAC)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() / 2


def make_step(net: torch.nn.Module, lq: torch.Tensor, gt: torch.Tensor):
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4, foreach=True)  # as IRModel builds it

    def step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.l1_loss(net(lq), gt).backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--family', choices=sorted(FAMILIES), default='ecbsr')
    parser.add_argument('--lq-size', type=int, default=64)
    parser.add_argument('--rounds', type=int, default=None, help='alternating rounds')
    parser.add_argument('--steps', type=int, default=None, help='timed steps per network per round')
    args = parser.parse_args()
    family = FAMILIES[args.family]
    rounds, steps_per_round = args.rounds or family['rounds'], args.steps or family['steps']

    torch.manual_seed(0)
    slow, fast = family['build'](False).train(), family['build'](True).train()
    fast.load_state_dict(slow.state_dict())
    scale, batch = family['scale'], family['batch']
    channels = family['channels']
    lq = torch.rand(batch, channels, args.lq_size, args.lq_size)
    gt = torch.rand(batch, channels, args.lq_size * scale, args.lq_size * scale)
    macs = {name: forward_macs(net, lq) for name, net in (('slow', slow), ('fast', fast))}
    with torch.no_grad():
        same = (slow(lq[:2]) - fast(lq[:2])).abs().max().item()
    slow_name, fast_name = family['names']
    steps = {slow_name: make_step(slow, lq, gt), fast_name: make_step(fast, lq, gt)}
    for step in steps.values():  # warm-up: allocator and kernel selection
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name] += [step() for _ in range(steps_per_round)]
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"{family['title']}, batch {batch}, LR {args.lq_size}x{args.lq_size}, {torch.get_num_threads()} threads; "
          f'outputs agree to {same:.1e}')
    for name, key in zip(steps, ('slow', 'fast'), strict=True):
        print(f'  {name:<10} {median[name]:9.1f} ms/step (median of {len(times[name])}), '
              f'{macs[key] / 1e9:.2f}B MACs per forward')
    print(f'  {fast_name} is {median[slow_name] / median[fast_name]:.2f}x faster per training step')


if __name__ == '__main__':
    main()
