"""Every checkpoint in every runtime apps ship, on a benchmark set: what each file does to the picture.

python scripts/runtime_report.py --models ../shared/checkpoints --eval-data ../shared/benchmarks/Set5
python scripts/runtime_report.py --models my_x4.pth --eval-data Set5/ --formats ncnn "ncnn app" openvino

For each model: torch fp32, then each format exported (checked by its runtime as export.py does) and run on the
set by its own runtime: ONNX Runtime, LiteRT, ncnn (CPU; "ncnn app" is the fp16 file Real-ESRGAN-ncnn-vulkan and
Upscayl load, run through their tiling and mirrored borders), ExecuTorch (XNNPACK), OpenVINO. Core ML is converted
and checked, not run (macOS only). int8 formats calibrate on --calib (default: the set's Set14 neighbour in the
same benchmarks folder). Prints one markdown table per model; speed is scripts/benchmark_models.py's.
"""

from __future__ import annotations

import argparse
import glob
from os import path as osp

from core.cli.arguments import image_size  # standard library only: --help stays instant
from core.errors import run_cli

FORMATS = ('onnx', 'tflite', 'ncnn', 'ncnn app', 'executorch', 'executorch-int8', 'openvino', 'coreml',
           'tflite-int8', 'onnx-int8')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', required=True, help='checkpoints, or folders searched for *.pth')
    parser.add_argument('--eval-data', required=True, help='paired set, EDSR or BasicSR layout')
    parser.add_argument('--formats', nargs='+', default=list(FORMATS), choices=FORMATS, metavar='FORMAT',
                        help=f"default: all of {', '.join(FORMATS)}")
    parser.add_argument('-opt', default=None,
                        help='YAML whose network_g describes checkpoints that cannot describe themselves')
    parser.add_argument('--calib', default=None,
                        help='LR folder for int8 calibration (default: <benchmarks>/Set14/LR_bicubic/X<scale>)')
    parser.add_argument('--size', type=image_size(16), default='120x120',
                        help='input size of the fixed-size files (TFLite, ExecuTorch) and calibration patches')
    return parser.parse_args(argv)


def _checkpoints(paths: list[str]) -> list[str]:
    found = []
    for path in paths:
        found += sorted(glob.glob(osp.join(path, '**', '*.pth'), recursive=True)) if osp.isdir(path) else [path]
    return found


def main(args: argparse.Namespace) -> None:
    import core.plugin  # noqa: F401
    from core.deploy.calibration import calibration_patches
    from core.deploy.model import load_deploy_model
    from core.deploy.runtime_comparison import format_runtime_rows, runtime_rows
    from core.errors import UserError

    checkpoints = _checkpoints(args.models)
    if not checkpoints:
        raise UserError(f"--models {' '.join(args.models)} holds no .pth file")
    for checkpoint in checkpoints:
        model = load_deploy_model(checkpoint, args.opt)
        calib = args.calib or osp.join(osp.dirname(osp.normpath(args.eval_data)), 'Set14', 'LR_bicubic',
                                       f'X{model.scale}')
        calibration = calibration_patches(calib, args.size, 16, model.num_in_ch)
        rows = runtime_rows(model, list(args.formats), args.eval_data, calibration, args.size)
        print(format_runtime_rows(f'{osp.basename(checkpoint)} ({model.arch} x{model.scale})', rows, args.eval_data))
        print(flush=True)


if __name__ == '__main__':
    parsed = parse_args()
    run_cli(lambda: main(parsed))
