"""fp32, post-training int8 and quantization-aware int8 side by side, each run in the LiteRT interpreter.

python scripts/quantization_report.py --fp32 ETDS_x4_plain.pth --qat experiments/ETDS_x4_qat/models/net_g_latest.pth \
    --calib datasets/DIV2K/DIV2K_train_LR_bicubic/X4_sub --eval-data datasets/benchmark/Set5

The PTQ file is calibrated on --calib; the QAT file needs no calibration (QAT learned its ranges).

--layers also prints, for every conv layer, the dB lost by putting only its weights, or only its output, in int8,
and the int8 levels its output's channels get: for the network as it is and after the int8 preparation that
export.py applies (PReLUs split, channels rescaled, weights GPTQ-rounded). People fix what they can see.
"""

from __future__ import annotations

import argparse

from core.cli.arguments import image_size  # standard library only: --help stays instant
from core.errors import run_cli  # standard library only: --help still answers before torch loads


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--fp32', required=True, help='the fp32 model (any checkpoint the toolkit knows)')
    parser.add_argument('--qat', default=None, help='the same model after QAT (train:qat), optional')
    parser.add_argument('--eval-data', required=True, help='paired set, EDSR or BasicSR layout')
    parser.add_argument('--calib', required=True, help='folder of LR images for the PTQ calibration')
    parser.add_argument('--calib-count', type=int, default=16)
    parser.add_argument('--size', type=image_size(), default='360x640',
                        help='TFLite input size HEIGHTxWIDTH (default 360x640)')
    parser.add_argument('--layers', action='store_true',
                        help='also print the per-layer sensitivity, before and after the int8 preparation')
    args = parser.parse_args(argv)
    return args


def main(args: argparse.Namespace) -> None:
    import core.plugin  # noqa: F401
    from core.deploy.calibration import calibration_patches
    from core.deploy.model import load_deploy_model
    from core.deploy.runtime_comparison import format_rows, quantization_rows

    fp32 = load_deploy_model(args.fp32)
    qat = load_deploy_model(args.qat) if args.qat else None
    calibration = calibration_patches(args.calib, args.size, args.calib_count, fp32.num_in_ch)
    if args.layers:
        from core.deploy.ptq import prepare_for_int8
        from core.deploy.sensitivity import format_sensitivity, layer_sensitivity

        color = 'y' if fp32.num_in_ch == 1 else None
        prepared = prepare_for_int8(fp32.net, calibration)
        for title, net in (('as it is', fp32.net),
                           (f'prepared, weights already int8 ({prepared.summary()})', prepared.net)):
            print(format_sensitivity(title, *layer_sensitivity(net, calibration, args.eval_data, fp32.scale, color)))
            print()
    print(format_rows(quantization_rows(fp32, args.eval_data, calibration, args.size, qat), args.eval_data))


if __name__ == '__main__':
    parsed = parse_args()
    run_cli(lambda: main(parsed))
