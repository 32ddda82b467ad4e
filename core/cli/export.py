"""Export a model to ONNX, TFLite, ncnn, ExecuTorch, Core ML or OpenVINO (fp32, fp16 or int8), or its weights to
safetensors, checked by the format's own runtime before the file is kept.

python scripts/export.py --model ETDS_M4C32_x4_plain.pth --format onnx --output etds_x4.onnx
python scripts/export.py --model net_g_latest.pth --format tflite-int8 --output etds_x4_int8.tflite \
    --calib datasets/DIV2K/DIV2K_train_LR_bicubic/X4_sub --eval-data datasets/benchmark/Set5
python scripts/export.py --model ETDS_M4C32_x4_plain.pth --format ncnn --ncnn-app realesrgan --output models/etds.param
python scripts/export.py --model ETDS_M4C32_x4_plain.pth --format web --output site/   # then scripts/serve_web.py site/

--model takes any checkpoint the toolkit knows: converted (meta), official raw (detected) or a training form
(converted and verified on the fly). TFLite files take one input size, ExecuTorch files any size up to it (--size,
default 360x640 LR); scripts/upscale.py tiles any image through them. ncnn and OpenVINO write two files
(.param/.xml and .bin).
"""

from __future__ import annotations

import argparse
import math
from os import path as osp

from core.cli.arguments import image_size
from core.errors import run_cli
from core.io.formats import (
    EXPORT_EXTENSIONS,
    EXPORT_FORMATS,
    QAT_FORMATS,
    SIZED_FORMATS,
    needs_calibration,
    weights_file,
)

ORT_CALIBRATION_SIZE = (128, 128)  # ORT keeps every activation of every calibration patch in memory


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='scripts/export.py', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', required=True, help='checkpoint (.pth) in any form the toolkit knows')
    parser.add_argument('--format', required=True, choices=EXPORT_FORMATS)
    parser.add_argument('--output', required=True,
                        help='the file to write, named by format (.onnx, .tflite, .param, .pte, .mlpackage, .xml, '
                             '.safetensors), or a folder for web; never the input')
    parser.add_argument('-opt', default=None,
                        help='training YAML: describes a checkpoint without meta, and its train set calibrates int8')
    parser.add_argument('--arch', default=None, metavar='TYPE',
                        help='read a raw state_dict as this network (for weights that fit more than one, e.g. '
                             'Plain or ETDSOnlyET)')
    parser.add_argument('--size', type=image_size(2), default=(360, 640),
                        help='TFLite input size, ExecuTorch largest input: HEIGHTxWIDTH in LR pixels (default 360x640)')
    parser.add_argument('--calib', default=None, help='folder of LR images for int8 calibration (default: -opt)')
    parser.add_argument('--calib-count', type=int, default=16, help='calibration patches (default 16)')
    parser.add_argument('--eval-data', default=None,
                        help='paired set (EDSR or BasicSR layout) on which to print Y-PSNR: torch fp32 vs the file')
    parser.add_argument('--nhwc-uint8', action='store_true',
                        help='ONNX: uint8 NHWC input and output in the graph (camera buffers)')
    parser.add_argument('--pixel-shuffle', choices=('depth-to-space', 'reshape'), default='depth-to-space',
                        help='ONNX lowering of PixelShuffle (some mobile delegates reject one of them)')
    parser.add_argument('--ncnn-app', choices=('realesrgan',), default=None,
                        help='ncnn: the files Real-ESRGAN-ncnn-vulkan and Upscayl load as they are: '
                             '<name>-x<scale>.param/.bin, fp16 storage')
    parser.add_argument('--reduce-range', action='store_true', help='onnx-int8: 7-bit weights (CPUs without VNNI)')
    parser.add_argument('--no-equalize', action='store_true',
                        help='int8: do not rescale channels before quantizing (the fp32 function is the same '
                             'either way; rescaling only lowers the int8 error)')
    parser.add_argument('--rounding', choices=('gptq', 'nearest'), default='gptq',
                        help='int8 weights: rounded by GPTQ on the calibration patches (default), or to nearest '
                             '(the quantizer alone); --no-equalize --rounding nearest is the plain quantizer')
    parser.add_argument('--tolerance', type=float, default=1e-5, help='largest fp32 max abs difference accepted')
    parser.add_argument('--int8-tolerance', type=float, default=0.02,
                        help='largest int8 mean abs difference from fp32 accepted (0.02 ≈ 5 grey levels)')
    args = parser.parse_args(argv)
    if args.format == 'web':
        if args.nhwc_uint8:
            parser.error('--nhwc-uint8 is for camera pipelines; the web page feeds float planes')
    elif osp.splitext(args.output)[1].lower() != EXPORT_EXTENSIONS[args.format]:
        parser.error(f'--format {args.format} writes a {EXPORT_EXTENSIONS[args.format]} file; '
                     f'name --output accordingly')
    if args.format == 'tflite' and args.nhwc_uint8:
        parser.error('--nhwc-uint8 is an ONNX option; tflite-int8 already takes int8 pixels (q = u8 - 128)')
    if args.ncnn_app and args.format != 'ncnn':
        parser.error('--ncnn-app is an option of --format ncnn')
    if args.calib_count < 1:
        parser.error('--calib-count must be at least 1')
    if osp.exists(args.model) and osp.exists(args.output) and osp.samefile(args.model, args.output):
        parser.error(f'--output {args.output} is the input model; choose another path')
    return args


def export(args: argparse.Namespace) -> None:
    import core.plugin  # noqa: F401  (registers the archs and converters; after parsing, so --help is instant)
    from core.deploy.calibration import calibration_folder_from_yaml, calibration_patches
    from core.deploy.export import export_model
    from core.deploy.model import load_deploy_model
    from core.deploy.runtime_comparison import compare_app_on_set, compare_on_set
    from core.deploy.tflite_flatbuffer import operator_types
    from core.deploy.web_export import MODEL_FILE
    from core.errors import UserError

    model = load_deploy_model(args.model, args.opt, arch=args.arch)
    print(f'model: {model.origin}')
    calibration = None
    if needs_calibration(args.format, model.qat_graph is not None):
        if not (args.calib or args.opt):
            raise UserError(f'--format {args.format} needs calibration images: pass --calib FOLDER of LR images '
                            'or -opt with the training YAML')
        folder = args.calib or calibration_folder_from_yaml(args.opt)
        size = args.size if args.format in SIZED_FORMATS else ORT_CALIBRATION_SIZE
        calibration = calibration_patches(folder, size, args.calib_count, model.num_in_ch, on_note=print)
        print(f'calibration: {len(calibration)} patches of {size[0]}x{size[1]} from {folder}')
    report = export_model(model, args.format, args.output, size=args.size, calibration=calibration,
                          nhwc_uint8=args.nhwc_uint8, pixel_shuffle=args.pixel_shuffle,
                          reduce_range=args.reduce_range, tolerance=args.tolerance,
                          int8_tolerance=args.int8_tolerance, equalized=not args.no_equalize,
                          rounding=args.rounding, ncnn_app=args.ncnn_app)
    if report.int8_preparation:
        print(f'int8 preparation: {report.int8_preparation}')
    mean = '' if math.isnan(report.mean_abs_diff) else f' (mean {report.mean_abs_diff:.3g})'
    reference = 'the torch QAT graph' if model.qat_graph is not None and args.format in QAT_FORMATS else 'torch fp32'
    if report.ran:
        print(f'{args.format}: max abs difference from {reference} on a real image: {report.max_abs_diff:.3g}{mean}')
    if report.note:
        print(f'{args.format}: {report.note}')
    if args.format == 'tflite-int8':
        convs = [op for op in operator_types(args.output) if op.op == 'CONV_2D']
        int8 = sum(op.inputs[:2] == ('INT8', 'INT8') and op.outputs == ('INT8',) for op in convs)
        print(f'int8 check: {int8} of {len(convs)} CONV_2D run on int8 tensors with int8 weights')
    if args.eval_data and report.ran:
        evaluated = osp.join(report.output, MODEL_FILE) if args.format == 'web' else report.output
        for line in compare_on_set(model, evaluated, args.eval_data):
            print(line)
        if args.ncnn_app:
            print(compare_app_on_set(model, report.output, args.eval_data))
    beside = weights_file(report.output)
    print(f'wrote {report.output}' + (f' and {beside}' if beside else ''))
    if args.format == 'web':
        print(f'serve it: python scripts/serve_web.py {report.output}  (then open the address it prints)')
    if args.ncnn_app:
        name, folder = osp.splitext(osp.basename(report.output))[0], osp.dirname(osp.abspath(report.output))
        print(f'Real-ESRGAN-ncnn-vulkan: realesrgan-ncnn-vulkan -i in.png -o out.png -m {folder} -n {name} '
              f'-s {model.scale}; Upscayl: add {folder} as a custom models folder')


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)  # before torch loads, so --help and argument errors answer at once
    run_cli(lambda: export(args))
