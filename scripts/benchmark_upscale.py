"""Peak memory of scripts/upscale.py against the size of its output, from 1 to 64 megapixels in, at x4.

python scripts/benchmark_upscale.py                      # 1, 9, 36, 64 MP inputs, --tile 256, torch
python scripts/benchmark_upscale.py --megapixels 1 9 --backend onnxruntime

Each run is its own process, so its peak RSS (the kernel's accounting of that child) is its own. A run on a
64×64 image gives the baseline: Python, torch and the model. Memory above it should be about the output in its
final dtype (8-bit RGB: 3 bytes a pixel) plus one tile's working set, so `above / output` stays flat as images
grow. The smallest input also runs whole-image, and its output is compared with the tiled one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BACKENDS = ('torch', 'onnxruntime')


def run_measured(command: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of one child process; a failure stops the benchmark with its message."""
    # into files, not pipes: the child's progress bars would fill a pipe nobody reads while we wait on it
    with tempfile.TemporaryFile('w+') as stdout, tempfile.TemporaryFile('w+') as stderr:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read(), stderr.read()
    if status != 0:
        raise SystemExit(f'error: {osp.basename(command[1])} failed: {err.strip()[-500:]}')
    return seconds, usage.ru_maxrss / 1024, out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--megapixels', type=float, nargs='+', default=[1, 9, 36, 64],
                        help='input sizes, square, in megapixels (default 1 9 36 64)')
    parser.add_argument('--tile', type=int, default=256, help='LR tile (default 256)')
    parser.add_argument('--backend', choices=BACKENDS, default='torch')
    args = parser.parse_args()
    if min(args.megapixels) <= 0:
        parser.error('--megapixels must be positive')
    return args


def main() -> None:
    args = parse_args()  # before torch loads: --help and argument errors answer at once
    import cv2
    import numpy as np
    import psutil
    import torch
    from skimage import data

    import core.plugin  # noqa: F401
    from core.archs.cost import count_macs
    from core.deploy.benchmarking import cpu_description, gemm_peaks
    from core.deploy.model import build_deployable
    from core.io.checkpoint import save_checkpoint

    machine = cpu_description()
    print(f"CPU: {machine['model']}; " + ', '.join(f'{f}={"yes" if on else "no"}' for f, on in machine['isa'].items()))
    peak = max(gemm_peaks().values())
    print(f'fp32 GEMM peak now: {peak / 1e9:.0f} GFLOP/s; memory available: '
          f'{psutil.virtual_memory().available / 2 ** 30:.1f} GB')
    with tempfile.TemporaryDirectory(dir=ROOT) as folder:  # on the project's disk: /tmp may be memory
        etds = dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=4, num_feat=32, num_residual_feat=3)
        torch.manual_seed(0)
        model = build_deployable('ETDSForInference', etds)
        macs_per_pixel = count_macs(model.net, (1, 3, 64, 64)) / 64 ** 2
        ckpt = osp.join(folder, 'etds.pth')
        save_checkpoint(ckpt, model.net.state_dict(), {'arch': 'ETDSForInference', 'args': etds})
        script = osp.join(ROOT, 'scripts', 'upscale.py')

        def upscale(side: int, extra: list[str]) -> tuple[float, float, str, str]:
            name = f'in{side}'
            image = osp.join(folder, f'{name}.png')
            if not osp.exists(image):
                cv2.imwrite(image, cv2.resize(data.astronaut()[..., ::-1], (side, side),
                                              interpolation=cv2.INTER_CUBIC))
            out = osp.join(folder, f'out{side}{"".join(extra)}')
            command = [sys.executable, script, '--model', ckpt, '--input', image, '--output', out,
                       '--backend', args.backend, *extra]
            seconds, rss, stdout = run_measured(command)
            return seconds, rss, stdout, osp.join(out, f'{name}.png')

        _, baseline, _, _ = upscale(64, [])
        print(f'ETDS-M4C32 x4 (seeded weights; memory does not depend on them), {args.backend}, --tile {args.tile}; '
              f'baseline peak RSS (Python, {args.backend}, model, a 64x64 image): {baseline:.0f} MB')
        header = (f'{"input":>12} {"output":>13} {"output bytes":>13} {"peak RSS":>10} {"above base":>11} '
                  f'{"above/output":>12} {"seconds":>8} {"of GEMM peak":>12}')
        print(header)
        tiled = {}
        for megapixels in args.megapixels:
            side = round((megapixels * 1e6) ** 0.5)
            seconds, rss, stdout, path = upscale(side, ['--tile', str(args.tile)])
            tiled[side] = path
            output_bytes = (4 * side) ** 2 * 3 / 2 ** 20  # 8-bit RGB
            fraction = 2 * macs_per_pixel * side * side / seconds / peak
            note = ' (planned: ' + stdout.strip().splitlines()[1] + ')' if 'memory-mapped' in stdout else ''
            print(f'{side:>5}x{side:<6} {4 * side:>6}x{4 * side:<6} {output_bytes:>10.0f} MB {rss:>7.0f} MB '
                  f'{rss - baseline:>8.0f} MB {(rss - baseline) / output_bytes:>12.2f} {seconds:>8.1f} '
                  f'{fraction:>12.3f}{note}')
        smallest = round((min(args.megapixels) * 1e6) ** 0.5)
        seconds, rss, _, whole = upscale(smallest, [])
        print(f'{smallest}x{smallest} whole image (no --tile): peak RSS {rss:.0f} MB ({rss - baseline:.0f} MB above '
              f'base), {seconds:.1f} s')
        difference = np.abs(cv2.imread(whole).astype(np.int16) - cv2.imread(tiled[smallest]).astype(np.int16))
        print(f'tiled and whole-image outputs differ by at most {difference.max()} grey levels, on '
              f'{np.mean(difference > 0):.4%} of the values')


if __name__ == '__main__':
    main()
