"""DIV2K preparation on small synthetic images: sub-images, MATLAB-bicubic LR, meta-info, lmdb, atomicity."""


import cv2
import numpy as np
import pytest
from basicsr.data import build_dataset
from basicsr.utils.matlab_functions import imresize

from conftest import run_repo_script, smooth_image
from core.data.preparation import bicubic_downscale, extract_subimages, subimage_origins


@pytest.mark.parametrize(('length', 'thresh', 'expected'), [
    (480, 0, [0]), (500, 0, [0, 20]), (500, 20, [0]), (720, 0, [0, 240]), (730, 0, [0, 240, 250]), (100, 0, []),
])
def test_subimage_origins_cover_the_border(length, thresh, expected):
    assert subimage_origins(length, 480, 240, thresh) == expected


def test_extract_subimages_are_crops_in_row_major_order():
    img = np.arange(30 * 20 * 3, dtype=np.int64).reshape(30, 20, 3)
    tiles = extract_subimages(img, 12, 8)
    assert len(tiles) == len(subimage_origins(30, 12, 8)) * len(subimage_origins(20, 12, 8))
    assert np.array_equal(tiles[1], img[0:12, 8:20])
    assert np.array_equal(tiles[-1], img[18:30, 8:20])


def test_bicubic_downscale_is_basicsr_matlab_imresize_rounded():
    hr = smooth_image(50, 37, seed=3)
    lr = bicubic_downscale(hr, 4)
    assert lr.shape == (12, 9, 3) and lr.dtype == np.uint8
    expected = np.clip(np.round(imresize(hr[:48, :36] / 255.0, 0.25) * 255), 0, 255).astype(np.uint8)
    assert np.array_equal(lr, expected)


def run_prepare(*args):
    return run_repo_script('scripts/prepare_div2k.py', *args)


@pytest.mark.slow
def test_prepare_script_end_to_end(tmp_path):
    src = tmp_path / 'DIV2K_train_HR'
    src.mkdir()
    cv2.imwrite(str(src / '0001.png'), smooth_image(60, 50, 1))
    cv2.imwrite(str(src / '0002.png'), smooth_image(48, 48, 2))
    out = tmp_path / 'DIV2K'
    result = run_prepare('--input', str(src), '--output', str(out), '--crop-size', '24', '--step', '12',
                         '--workers', '1', '--lmdb')
    assert result.returncode == 0, result.stderr
    hr_names = sorted(p.name for p in (out / 'DIV2K_train_HR_sub').iterdir())
    # 0001: rows 0,12,24,36 × cols 0,12,24,26; 0002: 0,12,24 × 0,12,24
    assert len(hr_names) == 16 + 9 and hr_names[0] == '0001_s001.png'
    for scale in (2, 3, 4):
        lr_dir = out / 'DIV2K_train_LR_bicubic_sub' / f'X{scale}'
        assert sorted(p.name for p in lr_dir.iterdir()) == hr_names
        hr = cv2.imread(str(out / 'DIV2K_train_HR_sub' / '0002_s005.png'))
        assert np.array_equal(cv2.imread(str(lr_dir / '0002_s005.png')), bicubic_downscale(hr, scale))
        assert (out / f'DIV2K_train_LR_bicubic_X{scale}_sub.lmdb' / 'meta_info.txt').is_file()
    meta = (out / 'meta_info_DIV2K_sub.txt').read_text().splitlines()
    assert meta[0] == '0001_s001.png (24,24,3)' and len(meta) == 25
    assert not list(out.glob('.partial*'))
    data = build_dataset({'name': 'div2k', 'type': 'PairedSRDataset', 'phase': 'train', 'scale': 4,
                          'dataroot_gt': str(out / 'DIV2K_train_HR_sub.lmdb'),
                          'dataroot_lq': str(out / 'DIV2K_train_LR_bicubic_X4_sub.lmdb'),
                          'io_backend': {'type': 'lmdb'}, 'lq_size': 6})
    assert len(data) == 25 and data[0]['gt'].shape == (3, 24, 24)

    again = run_prepare('--input', str(src), '--output', str(out), '--crop-size', '24', '--workers', '1')
    assert again.returncode == 2 and 'already exists' in again.stderr and '--overwrite' in again.stderr


@pytest.mark.slow
def test_crop_size_must_divide_every_scale(tmp_path):
    (tmp_path / 'in').mkdir()
    result = run_prepare('--input', str(tmp_path / 'in'), '--output', str(tmp_path / 'out'), '--crop-size', '100')
    assert result.returncode == 2 and 'not divisible by scale(s) [3]' in result.stderr
    assert not (tmp_path / 'out').exists()


@pytest.mark.slow
def test_bmp_storage_gives_the_same_training_samples_as_png(tmp_path):
    """--format bmp only changes how the bytes are stored: every sample, from folders or lmdb, is identical."""
    import random

    import torch

    src = tmp_path / 'DIV2K_train_HR'
    src.mkdir()
    cv2.imwrite(str(src / '0001.png'), smooth_image(48, 60, 1))
    for fmt in ('png', 'bmp'):
        result = run_prepare('--input', str(src), '--output', str(tmp_path / fmt), '--crop-size', '24', '--step',
                             '12', '--workers', '1', '--scales', '2', '--lmdb', '--format', fmt)
        assert result.returncode == 0, result.stderr
    bmp_hr = tmp_path / 'bmp' / 'DIV2K_train_HR_sub'
    assert sorted(p.suffix for p in bmp_hr.iterdir()) == ['.bmp'] * 12
    png_size = sum(p.stat().st_size for p in (tmp_path / 'png' / 'DIV2K_train_HR_sub').iterdir())
    assert sum(p.stat().st_size for p in bmp_hr.iterdir()) > png_size  # uncompressed

    def samples(fmt: str, backend: str) -> list[torch.Tensor]:
        root = tmp_path / fmt
        options = {'name': 'div2k', 'type': 'PairedSRDataset', 'phase': 'train', 'scale': 2, 'lq_size': 6,
                   'use_hflip': True, 'use_vflip': True, 'use_rot': True, 'use_channels_shuffle': True,
                   'io_backend': {'type': backend}}
        if backend == 'lmdb':
            options.update(dataroot_gt=str(root / 'DIV2K_train_HR_sub.lmdb'),
                           dataroot_lq=str(root / 'DIV2K_train_LR_bicubic_X2_sub.lmdb'))
        else:
            options.update(dataroot_gt=str(root / 'DIV2K_train_HR_sub'),
                           dataroot_lq=str(root / 'DIV2K_train_LR_bicubic_sub' / 'X2'),
                           meta_info_file=str(root / 'meta_info_DIV2K_sub.txt'))
        data = build_dataset(options)
        random.seed(0)
        np.random.seed(0)
        return [torch.cat([data[i]['gt'].flatten(), data[i]['lq'].flatten()]) for i in range(len(data))]

    reference = samples('png', 'disk')
    assert len(reference) == 12
    for fmt, backend in (('png', 'lmdb'), ('bmp', 'disk'), ('bmp', 'lmdb')):
        assert all(torch.equal(a, b) for a, b in zip(reference, samples(fmt, backend), strict=True)), (fmt, backend)
