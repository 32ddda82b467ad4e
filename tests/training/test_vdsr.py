"""VDSR: architecture, adjustable gradient clipping, SGD, multi-scale Y patches, and training from YAML."""

import math

import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.models import build_model
from basicsr.utils.matlab_functions import imresize

from conftest import training_opt, write_edsr_pairs, write_yaml
from core.archs.vdsr_arch import VDSR
from core.data.multiscale_y_dataset import degrade
from core.errors import UserError
from core.training.models.vdsr_model import clip_gradients
from core.training.pipelines import train_pipeline


def test_architecture():
    net = VDSR()
    assert sum(p.numel() for p in net.parameters()) == 664704
    assert all(m.bias is None for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert len(net.residual_layer) == 18 and net.widths == [64] * 19
    std = net.residual_layer[3].conv.weight.std().item()
    assert std == pytest.approx(math.sqrt(2 / (9 * 64)), rel=0.05)  # He-normal
    with torch.no_grad():
        net.output.weight.zero_()
    x = torch.rand(1, 1, 7, 8)
    assert torch.equal(net(x), x)  # the global residual
    up = VDSR(upscale=3)
    with torch.no_grad():
        up.output.weight.zero_()
    # bicubic input at upscale > 1: basicsr's imresize, to the float32 rounding of its x3 weights
    assert (up(x) - imresize(x[0], 3)[None]).abs().max() <= 2e-6
    assert VDSR(widths=[8, 4, 6]).widths == [8, 4, 6]


def grads_of(values):
    params = [torch.nn.Parameter(torch.zeros(len(v))) for v in values]
    for p, v in zip(params, values, strict=True):
        p.grad = torch.tensor(v, dtype=torch.float32)
    return params


def test_adjustable_clipping_bounds_gradients_by_theta_over_lr():
    params = grads_of([[5.0, -30.0, 0.1], [-0.2, 100.0]])
    clip_gradients(params, {'type': 'adjustable', 'theta': 0.4}, lr=0.1)  # bound 4
    assert params[0].grad.tolist() == pytest.approx([4.0, -4.0, 0.1])
    assert params[1].grad.tolist() == pytest.approx([-0.2, 4.0])
    params = grads_of([[5.0, -30.0]])
    clip_gradients(params, {'type': 'adjustable', 'theta': 0.4}, lr=0.01)  # the rate decayed: bound 40
    assert params[0].grad.tolist() == pytest.approx([5.0, -30.0])
    params = grads_of([[3.0, 4.0]])
    clip_gradients(params, {'type': 'norm', 'max_norm': 1.0}, lr=0.1)
    assert params[0].grad.tolist() == pytest.approx([0.6, 0.8], rel=1e-5)
    with pytest.raises(UserError, match="unknown grad_clip type 'value'"):
        clip_gradients(grads_of([[1.0]]), {'type': 'value'}, lr=0.1)


def test_multiscale_patches_are_bicubic_degraded_y(tmp_path):
    root = write_edsr_pairs(tmp_path / 'hr', 2, [(60, 50), (48, 64)])
    data = build_dataset({'name': 'v', 'type': 'MultiScaleYDataset', 'phase': 'train', 'scale': 4,
                          'scales': [2, 3, 4], 'dataroot_gt': str(root / 'HR'), 'patch_size': 41})
    seen = set()
    for i in range(30):
        sample = data[i % 2]
        assert sample['lq'].shape == sample['gt'].shape == (1, 41, 41)
        seen.add(sample['scale'])
    assert seen == {2, 3, 4}
    val = build_dataset({'name': 'v', 'type': 'MultiScaleYDataset', 'phase': 'val', 'scale': 3,
                         'dataroot_gt': str(root / 'HR')})[0]
    assert val['gt'].shape == (1, 60, 48)
    expected = degrade(val['gt'][0].numpy()[..., None], 3)
    np.testing.assert_allclose(val['lq'][0].numpy(), expected[..., 0], atol=1e-6)


def vdsr_opt(tmp_path, **train_extra):
    root = write_edsr_pairs(tmp_path / 'data', 2, [(60, 50), (48, 64), (52, 52)])
    opt = training_opt(root, name='vdsr', scale=2, total_iter=3)
    opt['model_type'] = 'VDSRModel'
    opt['network_g'] = {'type': 'VDSR', 'widths': [8, 8, 8]}
    opt['datasets']['train'] = {'name': 'y', 'type': 'MultiScaleYDataset', 'dataroot_gt': str(root / 'HR'),
                                'scales': [2, 3, 4], 'patch_size': 41, 'use_hflip': True, 'use_rot': True,
                                'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2}
    opt['datasets']['val'] = {'name': 'y_val', 'type': 'MultiScaleYDataset', 'dataroot_gt': str(root / 'HR')}
    opt['train'] = {'ema_decay': 0, 'optim_g': {'type': 'SGD', 'lr': 0.1, 'momentum': 0.9, 'weight_decay': 1e-4},
                    'scheduler': {'type': 'MultiStepLR', 'milestones': [2], 'gamma': 0.1}, 'total_iter': 3,
                    'warmup_iter': -1, 'grad_clip': {'type': 'adjustable', 'theta': 0.4},
                    'pixel_opt': {'type': 'MSELoss', 'loss_weight': 1.0, 'reduction': 'mean'}, **train_extra}
    return opt


def test_vdsr_model_uses_sgd_and_clips(tmp_path):
    opt = vdsr_opt(tmp_path) | {'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1}
    model = build_model(opt)
    assert isinstance(model.optimizer_g, torch.optim.SGD)
    assert model.optimizer_g.param_groups[0]['momentum'] == 0.9
    assert model.optimizer_g.defaults['foreach'] is True  # multi-tensor steps on the CPU too
    model.feed_data({'lq': torch.rand(2, 1, 41, 41) * 100, 'gt': torch.rand(2, 1, 41, 41)})  # huge gradients
    model.optimize_parameters(1)
    bound = 0.4 / 0.1
    assert max(p.grad.abs().max().item() for p in model.net_g.parameters()) <= bound + 1e-6


def test_vdsr_trains_from_yaml(tmp_path):
    path = write_yaml(tmp_path / 'vdsr.yml', vdsr_opt(tmp_path))
    train_pipeline(str(tmp_path), ['-opt', path])
    assert (tmp_path / 'experiments' / 'vdsr' / 'models' / 'net_g_latest.pth').is_file()
