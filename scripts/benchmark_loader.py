"""How fast the training loader delivers, and how much of each training step waits for it, on this machine.

python scripts/benchmark_loader.py                  # both parts, for one config per family
python scripts/benchmark_loader.py --configs configs/train/ESPCN_x4.yml --workers 0 1 2 --storage png-disk bmp-lmdb

Data: DIV2K-like sub-images (480² HR and MATLAB-bicubic LR) that scripts/prepare_div2k.py makes from
scikit-image's bundled photos (DIV2K itself is not downloadable here), stored four ways: PNG or uncompressed BMP
(`--format`), each as a folder (io_backend disk) and as lmdb.
Part 1, the loader alone: images/s of each config's training loader (its patch size, augmentation and colour) for
each storage and worker count. Part 2, the data wait: the config's network trains (forward, loss, backward, Adam at
the config's batch; compiled and autocast as the config says) fed by that loader as train.py feeds it
(core.data.prefetch); the wait is the share of the step spent waiting for the next batch, which is what the training
log prints as data_wait.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time
from os import path as osp

FAMILY_CONFIGS = ['ETDS_M4C32_x4', 'ECBSR_M4C16_x4', 'ABPN_M4C28_x4', 'Plain_M6C32_x4', 'ESPCN_x4', 'FSRCNN_x4',
                  'SESR_M5_x2', 'eSR-TM_s2_K7_C16', 'VDSR']
WAIT_TARGET = 0.05
STORAGE = ('png-disk', 'png-lmdb', 'bmp-disk', 'bmp-lmdb')  # sub-image format, io backend


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--configs', nargs='+', default=[f'configs/train/{name}.yml' for name in FAMILY_CONFIGS])
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--storage', nargs='+', choices=STORAGE, default=list(STORAGE))
    parser.add_argument('--batches', type=int, default=6, help='timed batches per loader (after the first)')
    parser.add_argument('--steps', type=int, default=8, help='timed training steps per config (after the first)')
    parser.add_argument('--images', type=int, default=8, help='960² source photos (9 sub-images each)')
    parser.add_argument('--skip-loader', action='store_true', help='part 2 only')
    parser.add_argument('--skip-wait', action='store_true', help='part 1 only')
    args = parser.parse_args()
    missing = [c for c in args.configs if not osp.isfile(c)]
    if missing:
        parser.error(f'no such config: {missing[0]} (run from the repository root)')
    return args


def make_data(root: str, images: int) -> dict:
    """DIV2K's layout under root/{png,bmp}, from scikit-image photos resized to 960² (9 sub-images of 480² each);
    returns those two folders and the number of sub-images."""
    import cv2

    from core.data.demo_data import TRAIN_IMAGES, load_bgr
    from core.data.preparation import write_lossless

    sources = osp.join(root, 'sources')
    os.makedirs(sources)
    for i in range(images):
        bgr = load_bgr(TRAIN_IMAGES[i % len(TRAIN_IMAGES)])
        write_lossless(osp.join(sources, f'{i:04d}.png'), cv2.resize(bgr, (960, 960), interpolation=cv2.INTER_CUBIC))
    script = osp.join(osp.dirname(osp.abspath(__file__)), 'prepare_div2k.py')
    prepared = {}
    for fmt in ('png', 'bmp'):
        prepared[fmt] = osp.join(root, fmt)
        subprocess.run([sys.executable, script, '--input', sources, '--output', prepared[fmt], '--lmdb', '--format',
                        fmt], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prepared['sub-images'] = len(glob.glob(osp.join(prepared['png'], 'DIV2K_train_HR_sub', '*.png')))
    return prepared


def dataset_options(config: dict, data: dict[str, str], storage: str, workers: int, batches: int) -> dict | None:
    """The config's training dataset on the prepared data in that storage (None: the dataset cannot read it).

    The epoch is enlarged to hold every timed batch: with a small data set, workers would otherwise restart at
    each epoch, a cost DIV2K's thousand batches per epoch spread thin.
    """
    fmt, backend = storage.split('-')
    root = data[fmt]
    samples = (batches + 2) * config['datasets']['train']['batch_size_per_gpu']
    options = dict(config['datasets']['train'], phase='train', scale=config['scale'],
                   io_backend={'type': backend}, num_worker_per_gpu=workers,
                   dataset_enlarge_ratio=-(-samples // data['sub-images']))
    scale = config['scale']
    if options['type'] == 'MultiScaleYDataset':  # reads folders only
        options['dataroot_gt'] = osp.join(root, 'DIV2K_train_HR_sub')
        return options if backend == 'disk' else None
    if backend == 'lmdb':
        options.update(dataroot_gt=osp.join(root, 'DIV2K_train_HR_sub.lmdb'),
                       dataroot_lq=osp.join(root, f'DIV2K_train_LR_bicubic_X{scale}_sub.lmdb'))
        options.pop('meta_info_file', None)
    else:
        options.update(dataroot_gt=osp.join(root, 'DIV2K_train_HR_sub'),
                       dataroot_lq=osp.join(root, 'DIV2K_train_LR_bicubic_sub', f'X{scale}'),
                       meta_info_file=osp.join(root, 'meta_info_DIV2K_sub.txt'))
    return options


RUN = {'world_size': 1, 'rank': 0, 'manual_seed': 0, 'num_gpu': 0, 'dist': False}  # one CPU training process


def build_loader(options: dict):
    """The loader train.py builds (core.data.resumable), for one process."""
    from basicsr.data import build_dataset

    from core.data.resumable import build_resumable_loader

    return build_resumable_loader(build_dataset(options), options, RUN)


def endless(loader, sampler):
    """Batches across epochs, as the training loop draws them."""
    epoch = 0
    while True:
        sampler.set_position(epoch, 0)
        yield from loader
        epoch += 1


def loader_rate(options: dict, batches: int) -> float:
    """Images per second of the loader alone, after its first batch (workers started, files opened)."""
    batches_of = endless(*build_loader(options))
    next(batches_of)
    start = time.perf_counter()
    for _ in range(batches):
        next(batches_of)
    return batches * options['batch_size_per_gpu'] / (time.perf_counter() - start)


def data_wait(config: dict, options: dict, steps: int) -> tuple[float, float]:
    """(median step seconds, share of the step spent waiting for data) of the config's network fed by the loader."""
    import torch
    from basicsr.archs import build_network
    from torch.nn import functional as F

    from core.data.prefetch import batch_source
    from core.training.models.fast_step import float_outputs, step_options

    net = build_network(dict(config['network_g'])).train()
    fused = bool(config['train']['optim_g'].get('fused'))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, **({'fused': True} if fused else {'foreach': True}))
    step_switches = step_options(config['train'])  # the step as the config trains it (compile, amp)
    forward = torch.compile(net) if step_switches.compile else net
    loader, sampler = build_loader(options)
    source = batch_source(loader, options, RUN)  # as the training loop draws batches (a thread with workers)
    sampler.set_position(0, 0)
    source.reset()
    waits, totals = [], []
    for step in range(steps + 1):  # one (enlarged) epoch
        start = time.perf_counter()
        batch = source.next()
        waited = time.perf_counter() - start
        optimizer.zero_grad(set_to_none=True)
        with step_switches.autocast(torch.device('cpu')):
            output = float_outputs(forward(batch['lq']))
        sr = output[0] if isinstance(output, tuple) else output
        F.l1_loss(sr, batch['gt']).backward()
        optimizer.step()
        if step:  # the first batch includes starting the workers (and compiling)
            waits.append(waited)
            totals.append(time.perf_counter() - start)
    getattr(source, 'close', lambda: None)()
    return statistics.median(totals), sum(waits) / sum(totals)


def main() -> None:
    args = parse_args()  # before torch loads, so --help and argument errors are instant
    import torch
    import yaml

    import core.plugin  # noqa: F401  (registers everything into basicsr)
    from core.deploy.benchmarking import cpu_description

    cpu = cpu_description()
    print(f"{cpu['model']}, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads; ISA: "
          + ' '.join(flag for flag, present in cpu['isa'].items() if present))
    configs = {osp.splitext(osp.basename(path))[0]: yaml.safe_load(open(path)) for path in args.configs}
    with tempfile.TemporaryDirectory(prefix='loader_benchmark_') as root:
        start = time.perf_counter()
        data = make_data(root, args.images)
        print(f"data: {data['sub-images']} sub-images of 480², made in {time.perf_counter() - start:.0f} s")
        if not args.skip_loader:
            print('\nthe loader alone, images/s (first batch not counted)')
            print(f"    {'storage':<10}" + ''.join(f'workers {w}'.rjust(11) for w in args.workers))
            settings: dict[str, list[str]] = {}
            for name, config in configs.items():
                train = config['datasets']['train']
                key = (f"{train['type']} x{config['scale']} {train.get('color', 'rgb')} "
                       f"patch {train.get('lq_size', train.get('patch_size'))} batch {train['batch_size_per_gpu']}")
                settings.setdefault(key, []).append(name)
            for key, names in settings.items():
                print(f"  {key} ({', '.join(names)})")
                for storage in args.storage:
                    options = [dataset_options(configs[names[0]], data, storage, w, args.batches) for w in args.workers]
                    if options[0] is not None:
                        rates = [loader_rate(o, args.batches) for o in options]
                        print(f'    {storage:<10}' + ''.join(f'{rate:11.0f}' for rate in rates))
        if not args.skip_wait:
            print(f'\ndata wait: share of each training step spent waiting for the loader (target < {WAIT_TARGET:.0%}),'
                  ' and the median step')
            print(f"    {'storage':<10}" + ''.join(f'workers {w}'.rjust(18) for w in args.workers))
            for name, config in configs.items():
                print(f"  {name} (batch {config['datasets']['train']['batch_size_per_gpu']})")
                for storage in args.storage:
                    options = [dataset_options(config, data, storage, w, args.steps) for w in args.workers]
                    if options[0] is not None:
                        cells = [data_wait(config, o, args.steps) for o in options]
                        print(f'    {storage:<10}' + ''.join(f'{wait:6.1%} {seconds * 1000:5.0f} ms'.rjust(18)
                                                          for seconds, wait in cells), flush=True)


if __name__ == '__main__':
    main()
