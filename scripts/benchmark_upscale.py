"""Peak memory and time of scripts/upscale.py on a 4K output, whole-image against tiled, side by side.

python scripts/benchmark_upscale.py            # 960x540 input, x4 ETDS-M4C32 (3840x2160 output), --tile 256

Each run is its own process, so its peak RSS (from the kernel's accounting of that child) is its own. The two
outputs are compared pixel by pixel.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from os import path as osp

from core.cli.arguments import image_size  # standard library only: --help stays instant

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run_measured(command: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one child process; a failure stops the benchmark with its message."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f'error: {" ".join(command[1:3])} failed: {child.stderr.read().strip()[-500:]}')
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=image_size(), default='540x960',
                        help='input HEIGHTxWIDTH (default 540x960: 4K out at x4)')
    parser.add_argument('--tile', type=int, default=256)
    args = parser.parse_args()
    height, width = args.size

    import cv2
    import numpy as np
    import torch
    from skimage import data

    import core.plugin  # noqa: F401
    from core.deploy.benchmarking import cpu_description
    from core.deploy.model import build_deployable
    from core.io.checkpoint import save_checkpoint

    machine = cpu_description()
    print(f"CPU: {machine['model']}; " + ', '.join(f'{f}={"yes" if on else "no"}' for f, on in machine['isa'].items()))
    with tempfile.TemporaryDirectory() as folder:
        args_etds = dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=4, num_feat=32, num_residual_feat=3)
        torch.manual_seed(0)
        net = build_deployable('ETDS', args_etds).net  # the training form: upscale.py converts it on load
        ckpt = osp.join(folder, 'etds.pth')
        save_checkpoint(ckpt, net.state_dict(), {'arch': 'ETDS', 'args': args_etds})
        image = cv2.resize(data.astronaut()[..., ::-1], (width, height), interpolation=cv2.INTER_AREA)
        cv2.imwrite(osp.join(folder, 'input.png'), image)
        script = osp.join(ROOT, 'scripts', 'upscale.py')
        base = [sys.executable, script, '--model', ckpt, '--input', osp.join(folder, 'input.png')]
        results = {}
        for label, extra in (('whole image', []), (f'--tile {args.tile}', ['--tile', str(args.tile)])):
            out = osp.join(folder, label.replace(' ', '_').replace('-', ''))
            results[label] = (*run_measured(base + ['--output', out] + extra), osp.join(out, 'input.png'))
        outputs = [cv2.imread(path).astype(np.int16) for *_, path in results.values()]
    print(f'ETDS-M4C32 x4 (training form, converted on load), {width}x{height} -> {4 * width}x{4 * height}')
    for label, (seconds, rss, _) in results.items():
        print(f'{label:<14} {seconds:6.1f} s   peak RSS {rss:7.0f} MB')
    print(f'outputs differ by at most {np.abs(outputs[0] - outputs[1]).max()} grey levels '
          f'(shapes {outputs[0].shape} and {outputs[1].shape})')


if __name__ == '__main__':
    main()
