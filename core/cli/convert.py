"""`python converter.py --input a.pth --output b.pth`: fold a training-form checkpoint into its plain deployable
form, verified in float64 before it is written."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from os import path as osp

from core.errors import run_cli
from core.io.paths import check_input_file, check_output_path, refuse_overwriting_input

DESCRIPTION = """Convert a training-form checkpoint into its plain deployable form, verified before it is written.

python converter.py --input experiments/ETDS_M4C32_x4/models/net_g_latest.pth --output ETDS_M4C32_x4_plain.pth
"""
EXTENSIONS = {'pth': '.pth', 'safetensors': '.safetensors'}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='converter.py', description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', required=True,
                        help='training-form checkpoint: raw state_dict, basicsr format or .safetensors')
    parser.add_argument('--output', required=True, help='where to write the converted checkpoint (never the input)')
    parser.add_argument('--format', choices=sorted(EXTENSIONS), default=None,
                        help='pth (torch) or safetensors; default: from the --output extension')
    parser.add_argument('-opt', default=None, help='training YAML whose network_g describes the input')
    parser.add_argument('--arch', default=None, metavar='TYPE',
                        help='read a raw state_dict as this network (for weights that fit more than one, e.g. '
                             'Plain or ETDSOnlyET)')
    parser.add_argument('--to', default=None, choices=['plain', 'et'],
                        help='plain: branches folded (e.g. ECBSRT); et: also the shortcut and clamp folded '
                             '(e.g. ECBSRET, ETDSForInference). Default: et where the family has it')
    parser.add_argument('--param-key', default=None, choices=['params', 'params_ema'],
                        help='which weights of a basicsr checkpoint to convert (default: params_ema if present)')
    parser.add_argument('--tolerance', type=float, default=1e-5, help='largest max-abs difference accepted')
    parser.add_argument('--two-step-shuffle', action=argparse.BooleanOptionalAction, default=None,
                        help='SESR x4: upsample with two PixelShuffle(2) (the authors\' TFLite layout) or, with --no-, '
                             'one PixelShuffle(4); the last conv is reordered exactly. Default: keep the input\'s')
    args = parser.parse_args(argv)
    extension = osp.splitext(args.output)[1].lower()
    args.format = args.format or ('safetensors' if extension == '.safetensors' else 'pth')
    if extension != EXTENSIONS[args.format]:
        parser.error(f'--format {args.format} writes a {EXTENSIONS[args.format]} file; name --output accordingly')
    check_input_file(args.input, '--input')
    if args.opt is not None:
        check_input_file(args.opt, '-opt')
    check_output_path(args.output)
    refuse_overwriting_input(args.input, args.output)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = run_cli(lambda: parse_args(argv))  # arguments and paths are checked before torch and basicsr load

    import core.plugin  # noqa: F401  (registers our archs and converters)
    from core.convert import convert_checkpoint

    options = {} if args.two_step_shuffle is None else {'two_step_shuffle': args.two_step_shuffle}
    report = run_cli(lambda: convert_checkpoint(args.input, args.output, opt_path=args.opt, kind=args.to,
                                                tolerance=args.tolerance, param_key=args.param_key,
                                                options=options, arch=args.arch))
    print(f'{report.source_arch} -> {report.target_arch} {report.target_args}')
    print(f'max abs difference on random inputs (float64): {report.max_abs_diff:.3g}')
    print(f'wrote {report.output}')

