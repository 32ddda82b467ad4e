"""Convert a training-form checkpoint into its plain deployable form, verified before it is written.

python converter.py --input experiments/ETDS_M4C32_x4/models/net_g_latest.pth --output ETDS_M4C32_x4_plain.pth
"""

import argparse

import core  # noqa: F401  (registers our archs and converters)
from core.converters import convert_checkpoint
from core.errors import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', required=True, help='training-form checkpoint (raw state_dict or basicsr format)')
    parser.add_argument('--output', required=True, help='where to write the converted checkpoint (never the input)')
    parser.add_argument('-opt', default=None, help='training YAML whose network_g describes the input')
    parser.add_argument('--to', default=None, choices=['plain', 'et'],
                        help='plain: branches folded (e.g. ECBSRT); et: also the shortcut and clamp folded '
                             '(e.g. ECBSRET, ETDSForInference). Default: et where the family has it')
    parser.add_argument('--param-key', default=None, choices=['params', 'params_ema'],
                        help='which weights of a basicsr checkpoint to convert (default: params_ema if present)')
    parser.add_argument('--tolerance', type=float, default=1e-5, help='largest max-abs difference accepted')
    parser.add_argument('--two-step-shuffle', action=argparse.BooleanOptionalAction, default=None,
                        help='SESR x4: upsample with two PixelShuffle(2) (the authors\' TFLite layout) or, with --no-, '
                             'one PixelShuffle(4); the last conv is reordered exactly. Default: keep the input\'s')
    args = parser.parse_args()
    options = {} if args.two_step_shuffle is None else {'two_step_shuffle': args.two_step_shuffle}
    report = convert_checkpoint(args.input, args.output, opt_path=args.opt, kind=args.to, tolerance=args.tolerance,
                                param_key=args.param_key, options=options)
    print(f'{report.source_arch} -> {report.target_arch} {report.target_args}')
    print(f'max abs difference on random inputs (float64): {report.max_abs_diff:.3g}')
    print(f'wrote {report.output}')


if __name__ == '__main__':
    run_cli(main)
