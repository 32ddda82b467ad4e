"""L1 filter pruning of VDSR: remove the smallest filters, fine-tune, and report what changed.

python scripts/prune_vdsr.py --input experiments/VDSR/models/net_g_latest.pth --output vdsr_pruned.pth \
    --train-data datasets/DIV2K/DIV2K_train_HR_sub --eval-data datasets/benchmark/Set5 --scale 4

Every hidden conv loses `--sparsity` of its output filters (smallest L1 norm first) and the model is rebuilt
dense and narrower, then fine-tuned with the VDSR recipe (SGD, adjustable clipping, multi-scale Y patches).
Params, MACs, ONNX size and Y-PSNR are printed before and after; the output loads in test.py as it is.
"""

import argparse
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import core  # noqa: E402,F401
from core.archs.vdsr_arch import VDSR  # noqa: E402
from core.checkpoint import load_checkpoint, load_into, refuse_overwriting_input, save_checkpoint  # noqa: E402
from core.data.multiscale_y_dataset import vdsr_training_patches  # noqa: E402
from core.errors import UserError, run_cli  # noqa: E402
from core.evaluation import y_psnr  # noqa: E402
from core.models.vdsr_model import sgd_steps  # noqa: E402
from core.pruning import conv_macs, onnx_size, prune_vdsr  # noqa: E402

MAC_SIZE = (720, 1280)  # MACs are reported for one 720p Y frame


def load_vdsr(path: str, scale: int) -> VDSR:
    state, meta = load_checkpoint(path)
    if meta.get('arch', 'VDSR') != 'VDSR':
        raise UserError(f"{path} holds a {meta['arch']}, not a VDSR")
    net = VDSR(upscale=scale, widths=meta.get('args', {}).get('widths'))
    load_into(net, state, source=path)
    return net


def fine_tune(net: VDSR, hr_folder: str, iters: int, batch: int, lr: float, theta: float) -> None:
    """The VDSR training step on the already-upsampled patches (the net's own bicubic input is bypassed)."""
    dataset = vdsr_training_patches(hr_folder, 'finetune')
    upscale, net.upscale = net.upscale, 1
    sgd_steps(net, dataset, iters, batch, lr, theta=theta, drop_last=len(dataset) >= batch, progress='fine-tune')
    net.upscale = upscale
    net.eval()


def report(net: VDSR, eval_data: str | None, scale: int) -> dict:
    return {'params': sum(p.numel() for p in net.parameters()), 'GMACs (720p)': conv_macs(net, *MAC_SIZE) / 1e9,
            'ONNX bytes': onnx_size(net), 'Y-PSNR': y_psnr(net, eval_data, scale, color='y') if eval_data else None}


def main() -> None:
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
    args = parser.parse_args()
    if not 0 < args.sparsity < 1:
        raise UserError(f'--sparsity must be between 0 and 1, got {args.sparsity}')
    refuse_overwriting_input(args.input, args.output)
    net = load_vdsr(args.input, args.scale)
    before = report(net, args.eval_data, args.scale)
    pruned = prune_vdsr(net, args.sparsity)
    if args.train_data and args.iters > 0:
        fine_tune(pruned, args.train_data, args.iters, args.batch, args.lr, args.theta)
    after = report(pruned, args.eval_data, args.scale)
    meta = {'arch': 'VDSR', 'args': {'upscale': args.scale, 'widths': pruned.widths},
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
    run_cli(main)
