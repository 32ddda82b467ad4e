"""Training-step time of collapsed vs branch ECB training, measured side by side in one run.

python scripts/benchmark_training.py            # ECBSR-M4C16 x4, batch 8, LR 64×64, as in the issue

Both networks start from the same weights; rounds alternate between them so machine noise hits both alike.
"""

import argparse
import statistics
import sys
import time
from os import path as osp

import torch
from torch.nn import functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import core  # noqa: E402,F401
from core.archs.ecbsr_arch import ECBSR  # noqa: E402


def make_step(net: torch.nn.Module, lq: torch.Tensor, gt: torch.Tensor):
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4)

    def step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.l1_loss(net(lq), gt).backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--lq-size', type=int, default=64)
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--num-block', type=int, default=4)
    parser.add_argument('--num-feat', type=int, default=16)
    parser.add_argument('--rounds', type=int, default=5, help='alternating rounds')
    parser.add_argument('--steps', type=int, default=4, help='timed steps per network per round')
    args = parser.parse_args()

    torch.manual_seed(0)
    arch = dict(num_in_ch=3, num_out_ch=3, upscale=args.scale, num_block=args.num_block, num_feat=args.num_feat)
    branch = ECBSR(**arch, collapsed=False).train()
    collapsed = ECBSR(**arch, collapsed=True).train()
    collapsed.load_state_dict(branch.state_dict())
    lq = torch.rand(args.batch, 3, args.lq_size, args.lq_size)
    gt = torch.rand(args.batch, 3, args.lq_size * args.scale, args.lq_size * args.scale)
    with torch.no_grad():
        same = (branch(lq) - collapsed(lq)).abs().max().item()
    steps = {'branch': make_step(branch, lq, gt), 'collapsed': make_step(collapsed, lq, gt)}
    for step in steps.values():  # warm-up: allocator and kernel selection
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name] += [step() for _ in range(args.steps)]
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f'ECBSR-M{args.num_block}C{args.num_feat} x{args.scale}, batch {args.batch}, '
          f'LR {args.lq_size}x{args.lq_size}, {torch.get_num_threads()} threads; outputs agree to {same:.1e}')
    for name in steps:
        print(f'  {name:<10} {median[name]:8.1f} ms/step (median of {len(times[name])})')
    print(f'  collapsed is {median["branch"] / median["collapsed"]:.2f}x faster per training step')


if __name__ == '__main__':
    main()
