"""The embedded default, end to end on CPU with no download: python scripts/demo.py

1. builds the demo data from scikit-image's bundled images (if absent),
2. trains ETDS-M4C32 x4 for a few hundred iterations (configs/train/demo/ETDS_M4C32_x4_demo.yml),
3. converts it exactly into the plain conv+ReLU ETDSForInference,
4. tests the plain model and MATLAB-bicubic on the held-out images and prints Y-PSNR/SSIM side by side.

`--benchmark ../shared/benchmarks/Set5` also evaluates both on a benchmark folder (EDSR or BasicSR layout).
"""

import argparse
import os
import sys
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import core  # noqa: E402,F401
from core.converters import convert_checkpoint  # noqa: E402
from core.data.demo_data import build_demo_data, demo_data_ready  # noqa: E402
from core.engine import evaluate_pipeline, train_pipeline  # noqa: E402
from core.errors import UserError, run_cli  # noqa: E402

TRAIN_OPT = 'configs/train/demo/ETDS_M4C32_x4_demo.yml'
TEST_OPT = 'configs/test/demo/ETDS_M4C32_x4_demo.yml'
BICUBIC_OPT = 'configs/test/demo/Bicubic_x4_demo.yml'
PLAIN_CKPT = 'experiments/ETDS_M4C32_x4_demo/models/net_g_latest_plain.pth'


def _evaluate(opt: str, benchmark: str | None) -> dict[str, dict[str, float]]:
    results = evaluate_pipeline(ROOT, ['-opt', opt])
    if benchmark:
        name = osp.basename(osp.normpath(benchmark))
        override = [f'datasets:test_1:dataroot={benchmark}', f'datasets:test_1:name={name}', 'val:save_img=false']
        results.update(evaluate_pipeline(ROOT, ['-opt', opt, '--force_yml', *override]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iters', type=int, default=None, help='training iterations (default: the YAML, 1000)')
    parser.add_argument('--benchmark', default=None, help='also evaluate on this benchmark folder, e.g. Set5')
    args = parser.parse_args()
    os.chdir(ROOT)  # the YAMLs name datasets/ and experiments/ relative to the repository
    if args.benchmark and not osp.isdir(args.benchmark):
        raise UserError(f'--benchmark {args.benchmark} is not a folder; pass e.g. datasets/benchmark/Set5')
    if not demo_data_ready():
        build_demo_data()
    train_argv = ['-opt', TRAIN_OPT]
    if args.iters:
        train_argv += ['--force_yml', f'train:total_iter={args.iters}']
    experiment = train_pipeline(ROOT, train_argv)
    report = convert_checkpoint(osp.join(experiment, 'models', 'net_g_latest.pth'), PLAIN_CKPT)
    bicubic = _evaluate(BICUBIC_OPT, args.benchmark)
    plain = _evaluate(TEST_OPT, args.benchmark)

    print(f'\nConverted {report.source_arch} -> {report.target_arch}: max abs difference {report.max_abs_diff:.2g}; '
          f'wrote {report.output}')
    print(f"\n{'dataset':<12}{'model':<28}{'Y-PSNR (dB)':>12}{'Y-SSIM':>9}")
    for dataset in plain:
        for label, results in (('Bicubic (MATLAB)', bicubic), ('ETDS-M4C32 x4 (plain)', plain)):
            metrics = results[dataset]
            print(f"{dataset:<12}{label:<28}{metrics['psnr']:>12.3f}{metrics['ssim']:>9.4f}")
        gain = plain[dataset]['psnr'] - bicubic[dataset]['psnr']
        print(f"{dataset:<12}{'gain over bicubic':<28}{gain:>+12.3f}")
    print('\nSuper-resolved held-out images: experiments/results/ETDS_M4C32_x4_demo_plain/visualization/')


if __name__ == '__main__':
    run_cli(main)
