"""The embedded default, end to end on CPU with no download: python scripts/demo.py

1. builds the demo data from scikit-image's bundled images (if absent),
2. trains ETDS-M4C32 x4 for a few hundred iterations (configs/train/demo/ETDS_M4C32_x4_demo.yml),
3. converts it exactly into the plain conv+ReLU ETDSForInference,
4. tests the plain model and MATLAB-bicubic on the held-out images and prints Y-PSNR/SSIM side by side,
5. ships it: ONNX, int8 TFLite after post-training quantization, and int8 TFLite after a short
   quantization-aware fine-tune, each run by its own runtime on the held-out images (Y-PSNR beside fp32),
   and one side-by-side picture (bicubic | int8 model on the phone runtime | ground truth).

`--benchmark ../shared/benchmarks/Set5` also evaluates everything on a benchmark folder (EDSR or BasicSR layout).
"""

import argparse
import logging
import os
from os import path as osp

from core.errors import run_cli  # standard library only: --help still answers before torch loads

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

TRAIN_OPT = 'configs/train/demo/ETDS_M4C32_x4_demo.yml'
QAT_OPT = 'configs/train/demo/ETDS_M4C32_x4_demo_qat.yml'
TEST_OPT = 'configs/test/demo/ETDS_M4C32_x4_demo.yml'
BICUBIC_OPT = 'configs/test/demo/Bicubic_x4_demo.yml'
PLAIN_CKPT = 'experiments/ETDS_M4C32_x4_demo/models/net_g_latest_plain.pth'
DEPLOY_DIR = 'experiments/ETDS_M4C32_x4_demo/deploy'
VAL_DIR = 'datasets/demo/val'
CALIB_DIR = 'datasets/demo/train/LR_bicubic/X4'
TFLITE_SIZE = (60, 60)  # the demo's LR sub-images; held-out images are tiled through it


def evaluate(opt: str, benchmark: str | None, root: str = ROOT) -> tuple[dict[str, dict[str, float]], str]:
    """Y-PSNR/SSIM of `opt` on its own test set and on `benchmark`, and where the first set's images went.

    Each evaluation has its own run name: basicsr archives a results folder whose name is reused.
    """
    import yaml

    from core.training.pipelines import evaluate_pipeline

    with open(opt) as handle:
        run_name = yaml.safe_load(handle)['name']
    results = evaluate_pipeline(root, ['-opt', opt])
    if benchmark:
        name = osp.basename(osp.normpath(benchmark))
        override = [f'name={run_name}_{name}', f'datasets:test_1:dataroot={benchmark}', f'datasets:test_1:name={name}',
                    'val:save_img=false']
        results.update(evaluate_pipeline(root, ['-opt', opt, '--force_yml', *override]))
    return results, osp.join('experiments', 'results', run_name, 'visualization')


def _print_shipped_table(fp32, files: dict[str, str], pad: int, sets: list[str]) -> None:
    """Held-out Y-PSNR of every shipped form, each file run by its own runtime, and its difference from fp32."""
    from core.deploy.paired_psnr import y_psnr
    from core.deploy.runtime_comparison import runtime_forward
    from core.deploy.runtimes import open_runtime

    rows = [('fp32, PyTorch (ETDSForInference)', fp32.net), ('fp32, ONNX Runtime', files['onnx']),
            ('int8 TFLite, post-training (PTQ)', files['ptq']), ('int8 TFLite, quantization-aware', files['qat'])]
    names = ['demo_val' if s == VAL_DIR else osp.basename(osp.normpath(s)) for s in sets]
    table = []
    for label, what in rows:
        forward = what if not isinstance(what, str) else runtime_forward(open_runtime(what), pad)
        table.append((label, [y_psnr(forward, folder, fp32.scale) for folder in sets]))
    print(f"\n{'shipped as (held-out Y-PSNR, dB)':<36}" + ''.join(f'{n:>12}' for n in names))
    for i, (label, values) in enumerate(table):
        deltas = '' if i == 0 else '   (' + ', '.join(
            f'{v - r:+.3f}' for v, r in zip(values, table[0][1], strict=True)) + ')'
        print(f"{label:<36}{''.join(f'{v:>12.3f}' for v in values)}{deltas}")


def _deploy(benchmark: str | None, qat_iters: int | None) -> None:
    """Export the demo model, quantize it twice (PTQ, QAT), and compare every file on its own runtime."""
    from core.deploy.calibration import calibration_patches
    from core.deploy.export import export_model
    from core.deploy.images import read_picture
    from core.deploy.model import load_deploy_model
    from core.deploy.receptive_field import receptive_radius
    from core.deploy.runtimes import open_runtime
    from core.deploy.upscaling import compare_strip, upscale_picture
    from core.deploy.web_export import runtime_installed
    from core.io.image_file import write_image
    from core.training.pipelines import train_pipeline

    os.makedirs(DEPLOY_DIR, exist_ok=True)
    notices = logging.FileHandler(osp.join(DEPLOY_DIR, 'export.log'), 'w')  # what TFLite and absl print
    notices.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
    deploy_logger = logging.getLogger('core.deploy')
    deploy_logger.setLevel(logging.DEBUG)
    deploy_logger.propagate = False  # to the file only, whatever handlers a library gave the root logger
    deploy_logger.addHandler(notices)
    fp32 = load_deploy_model(PLAIN_CKPT)
    pad = receptive_radius(fp32.net, fp32.num_in_ch, fp32.scale)
    calibration = calibration_patches(CALIB_DIR, TFLITE_SIZE, 16, fp32.num_in_ch)
    files = {'onnx': osp.join(DEPLOY_DIR, 'etds_m4c32_x4.onnx'),
             'ptq': osp.join(DEPLOY_DIR, 'etds_m4c32_x4_ptq_int8.tflite'),
             'qat': osp.join(DEPLOY_DIR, 'etds_m4c32_x4_qat_int8.tflite')}
    export_model(fp32, 'onnx', files['onnx'])
    export_model(fp32, 'tflite-int8', files['ptq'], size=TFLITE_SIZE, calibration=calibration)
    qat_argv = ['-opt', QAT_OPT] + (['--force_yml', f'train:total_iter={qat_iters}'] if qat_iters else [])
    qat_experiment = train_pipeline(ROOT, qat_argv)
    qat = load_deploy_model(osp.join(qat_experiment, 'models', 'net_g_latest.pth'))
    export_model(qat, 'tflite-int8', files['qat'], size=TFLITE_SIZE)

    _print_shipped_table(fp32, files, pad, [VAL_DIR] + ([benchmark] if benchmark else []))
    lr = osp.join(VAL_DIR, 'LR_bicubic', 'X4', 'chelseax4.png')
    picture = read_picture(lr)
    result = upscale_picture(picture, open_runtime(files['qat']), None, pad)
    strip = osp.join(DEPLOY_DIR, 'chelsea_compare.png')
    write_image(compare_strip(picture, result, 4, osp.join(VAL_DIR, 'HR', 'chelsea.png'), 'QAT int8 TFLite'),
                strip)
    site, web_page = osp.join(DEPLOY_DIR, 'site'), runtime_installed()  # npm ci --prefix web
    if web_page:
        export_model(fp32, 'web', site)
    deploy_logger.removeHandler(notices)
    notices.close()
    print(f'\nExported to {DEPLOY_DIR}/ (the exporters\' own notices: export.log); bicubic | QAT int8 TFLite | '
          f'ground truth: {strip}')
    if web_page:
        print(f'The model in a web page: python scripts/serve_web.py {site}  (then open http://127.0.0.1:8000/)')
    else:
        print('The model in a web page: npm ci --prefix web, then python scripts/export.py --model '
              f'{PLAIN_CKPT} --format web --output {site}')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iters', type=int, default=None, help='training iterations (default: the YAML, 1000)')
    parser.add_argument('--benchmark', default=None, help='also evaluate on this benchmark folder, e.g. Set5')
    parser.add_argument('--qat-iters', type=int, default=None, help='QAT fine-tune iterations (default: the YAML, 150)')
    parser.add_argument('--no-deploy', action='store_true', help='stop after the float model (no export, no QAT)')
    args = parser.parse_args(argv)
    if args.benchmark and not osp.isdir(args.benchmark):
        parser.error(f'--benchmark {args.benchmark} is not a folder; pass e.g. datasets/benchmark/Set5')
    args.benchmark = args.benchmark and osp.abspath(args.benchmark)  # the demo runs from the repository root
    return args


def main(args: argparse.Namespace) -> None:
    import core.plugin  # noqa: F401  (registers everything into basicsr)
    from core.convert import convert_checkpoint
    from core.data.demo_data import build_demo_data, demo_data_ready
    from core.training.pipelines import train_pipeline

    os.chdir(ROOT)  # the YAMLs name datasets/ and experiments/ relative to the repository
    if not demo_data_ready():
        build_demo_data()
    train_argv = ['-opt', TRAIN_OPT]
    if args.iters:
        train_argv += ['--force_yml', f'train:total_iter={args.iters}']
    experiment = train_pipeline(ROOT, train_argv)
    report = convert_checkpoint(osp.join(experiment, 'models', 'net_g_latest.pth'), PLAIN_CKPT)
    bicubic, _ = evaluate(BICUBIC_OPT, args.benchmark)
    plain, pictures = evaluate(TEST_OPT, args.benchmark)

    print(f'\nConverted {report.source_arch} -> {report.target_arch}: max abs difference {report.max_abs_diff:.2g}; '
          f'wrote {report.output}')
    print(f"\n{'dataset':<12}{'model':<28}{'Y-PSNR (dB)':>12}{'Y-SSIM':>9}")
    for dataset in plain:
        for label, results in (('Bicubic (MATLAB)', bicubic), ('ETDS-M4C32 x4 (plain)', plain)):
            metrics = results[dataset]
            print(f"{dataset:<12}{label:<28}{metrics['psnr']:>12.3f}{metrics['ssim']:>9.4f}")
        gain = plain[dataset]['psnr'] - bicubic[dataset]['psnr']
        print(f"{dataset:<12}{'gain over bicubic':<28}{gain:>+12.3f}")
    print(f'\nSuper-resolved held-out images: {pictures}/')
    if not args.no_deploy:
        _deploy(args.benchmark, args.qat_iters)


if __name__ == '__main__':
    arguments = parse_args()
    run_cli(lambda: main(arguments))
