"""L1 filter pruning of VDSR: remove the smallest filters, fine-tune, and report what changed.

python scripts/prune_vdsr.py --input experiments/VDSR/models/net_g_latest.pth --output vdsr_pruned.pth \
    --train-data datasets/DIV2K/DIV2K_train_HR_sub --eval-data datasets/benchmark/Set5 --scale 4

Every hidden conv loses `--sparsity` of its output filters (smallest L1 norm first) and the model is rebuilt
dense and narrower, then fine-tuned with the VDSR recipe (SGD, adjustable clipping, multi-scale Y patches).
Params, MACs, ONNX size and Y-PSNR are printed before and after; the output loads in test.py as it is.
"""

import argparse
from os import path as osp

from core.errors import run_cli  # standard library only: --help still answers before torch loads


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', required=True)
    parser.add_argument('--output', required=True)
    parser.add_argument('--sparsity', type=float, default=0.5, help='share of filters removed per conv (0.5)')
    parser.add_argument('--scale', type=int, default=4, help='scale used for evaluation and saved in the meta')
    parser.add_argument('--train-data', default=None, help='HR images for fine-tuning (no fine-tuning without)')
    parser.add_argument('--eval-data', default=None, help='benchmark folder for Y-PSNR, e.g. datasets/benchmark/Set5')
    parser.add_argument('--iters', type=int, default=1000)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--lr', type=float, default=0.01)
    parser.add_argument('--theta', type=float, default=0.4)
    args = parser.parse_args(argv)
    if not 0 < args.sparsity < 1:
        parser.error(f'--sparsity must be between 0 and 1, got {args.sparsity}')
    return args


def main(args: argparse.Namespace) -> None:
    import core.plugin  # noqa: F401  (registers everything into basicsr)
    from core.io.checkpoint import save_checkpoint
    from core.io.paths import refuse_overwriting_input
    from core.training.vdsr_pruning import fine_tune, load_vdsr, prune_vdsr, size_report

    refuse_overwriting_input(args.input, args.output)
    net = load_vdsr(args.input, args.scale)
    before = size_report(net, args.eval_data, args.scale)
    pruned = prune_vdsr(net, args.sparsity)
    if args.train_data and args.iters > 0:
        fine_tune(pruned, args.train_data, args.iters, args.batch, args.lr, args.theta)
    after = size_report(pruned, args.eval_data, args.scale)
    meta = {'arch': 'VDSR', 'args': pruned.init_args,
            'pruned_from': osp.basename(args.input), 'sparsity': args.sparsity, 'finetune_iters': args.iters}
    save_checkpoint(args.output, pruned.state_dict(), meta)
    print(f"\n{'':<14}{'before':>14}{'after':>14}{'ratio':>9}")
    for key in before:
        if before[key] is None:
            continue
        ratio = '' if key == 'Y-PSNR' else f'{before[key] / after[key]:.2f}x'
        fmt = '{:>14.3f}' if isinstance(before[key], float) else '{:>14,d}'
        print(f'{key:<14}' + fmt.format(before[key]) + fmt.format(after[key]) + f'{ratio:>9}')
    print(f'\nwrote {args.output} (widths {pruned.widths[0]}..., loads in test.py without network_g)')


if __name__ == '__main__':
    arguments = parse_args()
    run_cli(lambda: main(arguments))
