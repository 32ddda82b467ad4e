"""PairedSRDataset: layouts, mod-crop, patches, augmentation consistency, lmdb, and bad-input errors."""

import random
import re

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from torch.nn import functional as F

from conftest import write_edsr_pairs
from core.data.preparation import build_lmdb
from core.data.resumable import data_workers
from core.errors import UserError


def dataset_opt(phase='train', **extra):
    opt = {'name': 'd', 'type': 'PairedSRDataset', 'phase': phase, 'scale': 2, 'io_backend': {'type': 'disk'}}
    return opt | extra


def write_nearest_pairs(root, scale=2, count=3, lr_hw=(12, 10), extra=1):
    """HR = nearest upsampling of a random LR, plus `extra` junk rows/cols that mod-crop must drop."""
    (root / 'HR').mkdir(parents=True)
    (root / 'LR_bicubic' / f'X{scale}').mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        lr = rng.integers(0, 256, size=(*lr_hw, 3), dtype=np.uint8)
        hr = np.repeat(np.repeat(lr, scale, 0), scale, 1)
        hr = np.pad(hr, ((0, extra), (0, extra), (0, 0)), constant_values=255)
        cv2.imwrite(str(root / 'HR' / f'p{i}.png'), hr)
        cv2.imwrite(str(root / 'LR_bicubic' / f'X{scale}' / f'p{i}x{scale}.png'), lr)
    return root


def test_edsr_layout_mod_crops_hr_to_lr_times_scale(tmp_path):
    root = write_edsr_pairs(tmp_path / 'set', 3, [(50, 41), (36, 30)])
    data = build_dataset(dataset_opt('test', dataroot=str(root), scale=3))
    sample = data[0]
    assert sample['lq'].shape == (3, 16, 13) and sample['gt'].shape == (3, 48, 39)
    hr = cv2.imread(str(root / 'HR' / 'img0.png'))[:48, :39, ::-1] / 255.0
    assert np.allclose(sample['gt'].permute(1, 2, 0).numpy(), hr, atol=1e-6)
    assert sample['lq_path'].endswith('img0x3.png')


def test_basicsr_layout_is_detected(tmp_path):
    root = tmp_path / 'bench'
    (root / 'GTmod12').mkdir(parents=True)
    (root / 'LRbicx2').mkdir()
    cv2.imwrite(str(root / 'GTmod12' / 'a.png'), np.zeros((24, 24, 3), np.uint8))
    cv2.imwrite(str(root / 'LRbicx2' / 'a.png'), np.zeros((12, 12, 3), np.uint8))
    data = build_dataset(dataset_opt('test', dataroot=str(root)))
    assert len(data) == 1 and data[0]['gt'].shape == (3, 24, 24)


@pytest.mark.parametrize('options', [
    {},
    {'use_hflip': True, 'use_vflip': True, 'use_rot': True},
    {'use_hflip': True, 'use_vflip': True, 'use_rot': True, 'use_channels_shuffle': True},
])
def test_patches_stay_aligned_under_every_augmentation(tmp_path, options):
    root = write_nearest_pairs(tmp_path / 'train')
    data = build_dataset(dataset_opt(dataroot=str(root), lq_size=6, **options))
    random.seed(0)
    np.random.seed(0)
    for i in range(40):
        sample = data[i % len(data)]
        assert sample['lq'].shape == (3, 6, 6) and sample['gt'].shape == (3, 12, 12)
        expected = F.interpolate(sample['lq'][None], scale_factor=2, mode='nearest')[0]
        assert torch.equal(sample['gt'], expected)


def test_vertical_flip_and_channel_shuffle_actually_happen(tmp_path):
    root = write_nearest_pairs(tmp_path / 'train', count=1, lr_hw=(6, 6), extra=0)
    lr = torch.from_numpy(cv2.imread(str(root / 'LR_bicubic' / 'X2' / 'p0x2.png'))[..., ::-1].copy()).permute(2, 0, 1)
    lr = lr.float() / 255
    random.seed(1)
    np.random.seed(1)
    vflip = build_dataset(dataset_opt(dataroot=str(root), lq_size=6, use_vflip=True))
    seen = {torch.equal(vflip[0]['lq'], lr.flip(1)) for _ in range(20)}
    assert seen == {True, False}
    shuffle = build_dataset(dataset_opt(dataroot=str(root), lq_size=6, use_channels_shuffle=True))
    orders = set()
    for _ in range(30):
        lq = shuffle[0]['lq']
        order = tuple(int(next(c for c in range(3) if torch.equal(lq[k], lr[c]))) for k in range(3))
        orders.add(order)
    assert len(orders) > 3


def test_lmdb_backend_reads_the_same_pairs(tmp_path):
    root = tmp_path / 'div2k'
    for sub, size in (('hr', 24), ('lr', 12)):
        (root / sub).mkdir(parents=True)
        for i in range(3):
            rng = np.random.default_rng(i)
            cv2.imwrite(str(root / sub / f'{i:04d}_s001.png'), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    build_lmdb(str(root / 'hr'), str(root / 'hr.lmdb'))
    build_lmdb(str(root / 'lr'), str(root / 'lr.lmdb'))
    disk = build_dataset(dataset_opt('test', dataroot_gt=str(root / 'hr'), dataroot_lq=str(root / 'lr')))
    lmdb = build_dataset(dataset_opt('test', dataroot_gt=str(root / 'hr.lmdb'), dataroot_lq=str(root / 'lr.lmdb'),
                                     io_backend={'type': 'lmdb'}))
    assert len(lmdb) == len(disk) == 3
    for i in range(3):
        assert torch.equal(lmdb[i]['gt'], disk[i]['gt']) and torch.equal(lmdb[i]['lq'], disk[i]['lq'])


def test_lmdb_size_mismatch_is_caught_from_meta_info(tmp_path):
    for sub, size in (('hr', 24), ('lr', 11)):
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / 'a.png'), np.zeros((size, size, 3), np.uint8))
        build_lmdb(str(tmp_path / sub), str(tmp_path / f'{sub}.lmdb'))
    with pytest.raises(UserError, match='is 11x11 but'):
        build_dataset(dataset_opt('test', dataroot_gt=str(tmp_path / 'hr.lmdb'),
                                  dataroot_lq=str(tmp_path / 'lr.lmdb'), io_backend={'type': 'lmdb'}))


def test_size_mismatch_names_the_pair_and_the_fix(tmp_path):
    root = write_edsr_pairs(tmp_path / 'set', 2, [(40, 40)])
    cv2.imwrite(str(root / 'LR_bicubic' / 'X2' / 'img0x2.png'), np.zeros((19, 20, 3), np.uint8))
    with pytest.raises(UserError, match=r'img0x2.png is 19x20 but .*img0.png is 40x40: at x2') as info:
        build_dataset(dataset_opt('test', dataroot=str(root)))
    assert 'prepare_div2k.py' in str(info.value)


def test_wrong_scale_is_a_size_mismatch(tmp_path):
    root = write_edsr_pairs(tmp_path / 'set', 2, [(40, 40)])
    (root / 'LR_bicubic' / 'X4').mkdir()
    for p in (root / 'LR_bicubic' / 'X2').iterdir():
        p.rename(root / 'LR_bicubic' / 'X4' / p.name.replace('x2', 'x4'))
    with pytest.raises(UserError, match='at x4 the LR must be HR // 4'):
        build_dataset(dataset_opt('test', dataroot=str(root), scale=4))


def test_missing_folder_says_the_layout_and_the_script(tmp_path):
    with pytest.raises(UserError, match=r'expected HR/ and LR_bicubic/X2/.*make_demo_data.py'):
        build_dataset(dataset_opt(dataroot=str(tmp_path / 'absent')))
    with pytest.raises(UserError, match='does not exist'):
        build_dataset(dataset_opt(dataroot_gt=str(tmp_path / 'a'), dataroot_lq=str(tmp_path / 'b')))


def test_lq_size_larger_than_the_images_is_refused(tmp_path):
    root = write_edsr_pairs(tmp_path / 'set', 2, [(20, 20)])
    with pytest.raises(UserError, match='smaller than lq_size 48'):
        build_dataset(dataset_opt(dataroot=str(root), lq_size=48))


@pytest.mark.parametrize(('value', 'processes', 'cores', 'expected'), [
    ('auto', 1, 2, 2), ('auto', 1, 16, 8), ('auto', 1, 64, 8), ('auto', 4, 16, 4), ('auto', 2, 2, 2), (0, 1, 2, 0),
    (3, 1, 2, 3),
    ('2', 1, 2, 2),
])
def test_data_workers_auto_follows_the_cores_per_trainer(value, processes, cores, expected):
    assert data_workers(value, processes, cores) == expected


@pytest.mark.parametrize('value', [-1, 'many', True, 1.5])
def test_data_workers_names_the_option(value):
    with pytest.raises(UserError, match="num_worker_per_gpu is .*'auto'"):
        data_workers(value, 1, 2)


@pytest.mark.slow
def test_loader_benchmark_prints_rates_and_waits():
    from conftest import run_repo_script

    result = run_repo_script('scripts/benchmark_loader.py', '--configs', 'configs/train/ESPCN_x4.yml', '--workers',
                             '0', '1', '--storage', 'bmp-disk', '--batches', '1', '--steps', '1', '--images', '4')
    assert result.returncode == 0, result.stderr
    assert 'data: 36 sub-images of 480²' in result.stdout and 'ISA:' in result.stdout
    assert re.search(r'bmp-disk +\d+ +\d+\n', result.stdout)  # images/s with 0 and 1 workers
    assert re.search(r'bmp-disk +\d+\.\d% +\d+ ms +\d+\.\d% +\d+ ms', result.stdout)  # wait and step


@pytest.mark.parametrize(('loaded', 'context'), [({}, None), ({'jax': None}, 'forkserver')])
def test_workers_start_by_forkserver_once_a_threaded_runtime_is_loaded(tmp_path, monkeypatch, loaded, context):
    import sys
    import types

    from conftest import training_opt
    from core.data.resumable import build_resumable_loader

    for name in loaded:  # JAX's threads make fork unsafe; TFLite export loads it
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    opt = training_opt(write_edsr_pairs(tmp_path / 'data', 2, [(24, 24)] * 4)) | {'dist': False, 'world_size': 1,
                                                                                    'rank': 0}
    dataset_opt = dict(opt['datasets']['train'], phase='train', scale=2, num_worker_per_gpu=1)
    loader, _ = build_resumable_loader(build_dataset(dataset_opt), dataset_opt, opt)
    chosen = loader.multiprocessing_context
    assert (chosen.get_start_method() if chosen is not None else None) == context
