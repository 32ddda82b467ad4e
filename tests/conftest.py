"""Shared fixtures: synthetic paired data, small configs, and the optional ../shared benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

import core.plugin  # noqa: F401  (registers everything into basicsr)
from core.data.preparation import bicubic_downscale
from core.deploy.model import deploy_model
from core.io.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # scripts/ is importable in tests however pytest is started
SHARED_BENCHMARKS = REPO.parent / 'shared' / 'benchmarks'


@pytest.fixture
def shared_set5() -> Path:
    set5 = SHARED_BENCHMARKS / 'Set5'
    if not set5.is_dir():
        pytest.skip('../shared/benchmarks/Set5 is not present (it is only on the project machines)')
    return set5


def matlab_y(bgr: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr's Y (BT.601, 16–235) of a uint8 BGR image, in float64: the tests' independent reference."""
    b, g, r = (bgr[..., i].astype(np.float64) for i in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def perturb(net: torch.nn.Module, amount: float, seed: int = 0) -> torch.nn.Module:
    """Add seeded Gaussian noise to every trainable weight, so no weight keeps its (often special) init."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in net.parameters():
            if param.requires_grad:
                param.add_(amount * torch.randn_like(param))
    return net.eval()


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A uint8 BGR image with structure at several scales, so bicubic and learned SR differ."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(height // 8, 2), max(width // 8, 2), 3), dtype=np.uint8)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    img += rng.integers(-12, 13, size=img.shape, dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_edsr_pairs(root: Path, scale: int, sizes: list[tuple[int, int]], seed: int = 0) -> Path:
    """EDSR layout with HR not mod-cropped: HR/{n}.png, LR_bicubic/X{s}/{n}x{s}.png."""
    (root / 'HR').mkdir(parents=True, exist_ok=True)
    (root / 'LR_bicubic' / f'X{scale}').mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        hr = smooth_image(h, w, seed + i)
        cv2.imwrite(str(root / 'HR' / f'img{i}.png'), hr)
        cv2.imwrite(str(root / 'LR_bicubic' / f'X{scale}' / f'img{i}x{scale}.png'), bicubic_downscale(hr, scale))
    return root


def run_repo_script(script: str, *args: str, cwd: Path | None = None,
                    timeout: int = 300) -> subprocess.CompletedProcess:
    """Run one of the repository's command-line entry points as a user would, capturing its output."""
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def load_by_meta(path: Path) -> torch.nn.Module:
    """A checkpoint with meta (what the converter and our trainer write) as a built network in eval mode."""
    from basicsr.archs import build_network  # here: basicsr may only be imported after `core` (its compat fix)

    state, meta = load_checkpoint(str(path))
    net = build_network({'type': meta['arch'], **meta['args']})
    net.load_state_dict(state, strict=True)
    return net.eval()


def write_yaml(path: Path, opt: dict) -> str:
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return str(path)


def tiny_etds(scale: int = 2) -> dict:
    return {'type': 'ETDS', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': scale, 'num_block': 1, 'num_feat': 8,
            'num_residual_feat': 3}


def metrics_opt(scale: int) -> dict:
    return {'psnr': {'type': 'calculate_psnr', 'crop_border': scale, 'test_y_channel': True},
            'ssim': {'type': 'calculate_ssim', 'crop_border': scale, 'test_y_channel': True}}


def training_opt(data_root: Path, name: str = 'tiny', scale: int = 2, total_iter: int = 4, **train_extra) -> dict:
    """A CPU training config that runs in seconds on synthetic data."""
    return {
        'name': name, 'model_type': 'ETDSModel', 'scale': scale, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {
            'train': {'name': 'synthetic', 'type': 'PairedSRDataset', 'dataroot': str(data_root),
                      'io_backend': {'type': 'disk'}, 'lq_size': 8, 'use_hflip': True, 'use_vflip': True,
                      'use_rot': True, 'use_channels_shuffle': True, 'num_worker_per_gpu': 0,
                      'batch_size_per_gpu': 2, 'dataset_enlarge_ratio': 1},
            'val': {'name': 'synthetic_val', 'type': 'PairedSRDataset', 'dataroot': str(data_root),
                    'io_backend': {'type': 'disk'}},
        },
        'network_g': tiny_etds(scale),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'ema_decay': 0.9, 'optim_g': {'type': 'Adam', 'lr': 5e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5},
                  'total_iter': total_iter, 'warmup_iter': -1, 'fixed_residual_model_iters': 2,
                  'interpolation_loss_weight': 0.5,
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}, **train_extra},
        'val': {'val_freq': 1000, 'save_img': False, 'metrics': metrics_opt(scale)},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
    }


def eval_opt(data_root: Path, ckpt: str | None, network: dict | None, name: str = 'tiny_test',
             scale: int = 2) -> dict:
    opt = {
        'name': name, 'model_type': 'IRModel', 'scale': scale, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'test_1': {'name': 'synthetic', 'type': 'PairedSRDataset', 'dataroot': str(data_root),
                                'io_backend': {'type': 'disk'}}},
        'path': {'pretrain_network_g': ckpt, 'strict_load_g': True, 'param_key_g': 'params_ema'},
        'val': {'save_img': False, 'suffix': None, 'metrics': metrics_opt(scale)},
    }
    if network is not None:
        opt['network_g'] = network
    return opt


def assert_one_line_error(result, *fragments):
    """Exit 2 and one `error:` line, last on stderr (progress logs may precede it), and no traceback."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 'Traceback' not in result.stderr
    assert [line for line in lines if line.startswith('error: ')] == [lines[-1]], result.stderr
    for fragment in fragments:
        assert fragment in lines[-1]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# Every deployable form, small; the expected radius is the structural one (sum of the conv half-widths in LR px).
DEPLOYABLE = {
    'ETDSForInference': ({'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 4, 'num_block': 4, 'num_feat': 12,
                          'num_residual_feat': 3}, 6),
    'ECBSRT': ({'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_block': 2, 'num_feat': 8,
                'act_type': 'prelu'}, 4),
    'ECBSRET': ({'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 3, 'num_block': 2, 'num_feat': 8}, 4),
    'ABPN_ET': ({'num_feat': 8, 'num_block': 2, 'scale': 4}, 5),
    'Plain': ({'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_block': 2, 'num_feat': 8}, 4),
    'SESRInference': ({'num_in_ch': 1, 'num_out_ch': 1, 'upscale': 4, 'm': 3, 'int_features': 8,
                       'two_step_shuffle': True}, 7),
    'EdgeSR': ({'model_id': 'eSR-TR_s2_K7_C4'}, 3),
    'ESPCN': ({'colors': 3, 'upscale': 3}, 4),
    'FSRCNN': ({'upscale': 2}, 8),
    'VDSR': ({'upscale': 2, 'widths': [8, 6, 7]}, 4),  # 4 HR convs = 2 LR px, then the bicubic input's 2
    'Bicubic': ({'upscale': 3}, 2),
}


def deployable(arch: str, seed: int = 0):
    from basicsr.archs import build_network  # after `core`: see load_by_meta

    args, _ = DEPLOYABLE[arch]
    net = perturb(build_network({'type': arch, **args}), 0.05, seed) if arch != 'Bicubic' else build_network(
        {'type': arch, **args})
    return deploy_model(net, arch, args, 'test')


def read_metrics(path: str) -> list[dict]:
    """The records of a metrics.jsonl (core.io.metrics_log writes one JSON object per line)."""
    with open(path, encoding='utf-8') as handle:
        return [json.loads(line) for line in handle if line.strip()]
