"""Deploy: loading any checkpoint as its deployable net, receptive-field radius, tiling, and scripts/upscale.py."""

from __future__ import annotations

import importlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs import build_network

from conftest import DEPLOYABLE, deployable, perturb, run_repo_script, smooth_image, tiny_etds
from core.cli.upscale import parse_args, upscale
from core.deploy.images import picture_to_array, read_picture
from core.deploy.model import load_deploy_model
from core.deploy.receptive_field import receptive_radius
from core.deploy.runtimes import TorchRuntime
from core.deploy.tiling import plan_tiles, tiled_forward
from core.deploy.upscaling import upscale_picture
from core.errors import UserError
from core.io.checkpoint import save_checkpoint


@pytest.mark.parametrize('arch', sorted(DEPLOYABLE))
def test_radius_is_the_structural_receptive_field(arch):
    model = deployable(arch)
    assert receptive_radius(model.net, model.num_in_ch, model.scale) == DEPLOYABLE[arch][1]


@pytest.mark.parametrize('arch', sorted(DEPLOYABLE))
def test_tiled_equals_whole_image_with_the_radius_as_pad(arch):
    model = deployable(arch)
    runtime = TorchRuntime(model)
    pad = DEPLOYABLE[arch][1]
    x = np.random.default_rng(1).random((1, model.num_in_ch, 29, 23), dtype=np.float32)
    whole = runtime(x)
    tiled = tiled_forward(runtime, x, model.scale, (2 * pad, 2 * pad), pad)
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole).max() <= 1e-5


def test_a_pad_below_the_radius_leaves_seams():
    model = deployable('ETDSForInference')
    runtime = TorchRuntime(model)
    x = np.random.default_rng(1).random((1, 3, 29, 23), dtype=np.float32)
    tiled = tiled_forward(runtime, x, model.scale, (12, 12), 5)
    assert np.abs(tiled - runtime(x)).max() > 1e-4  # 10× the exactness bound: the radius (6) is needed


def test_tiles_cover_every_pixel_once():
    for fixed in (None, (16, 12)):
        tiles = plan_tiles(37, 30, (10, 6), 3, fixed)
        covered = np.zeros((37, 30), dtype=int)
        for t in tiles:
            covered[t.y0:t.y1, t.x0:t.x1] += 1
            assert t.cy0 <= t.y0 and t.y1 <= t.cy1 and t.cx0 <= t.x0 and t.x1 <= t.cx1
            if fixed:
                assert (t.cy1 - t.cy0, t.cx1 - t.cx0) == fixed
        assert (covered == 1).all()


def test_fixed_size_model_upscales_any_size_exactly():
    model = deployable('ETDSForInference')
    runtime = TorchRuntime(model)

    def fixed_forward(x: np.ndarray) -> np.ndarray:
        assert x.shape[-2:] == (20, 18)  # what a .tflite file accepts
        return runtime(x)

    x = np.random.default_rng(2).random((1, 3, 45, 37), dtype=np.float32)
    out = tiled_forward(fixed_forward, x, 4, None, 6, fixed=(20, 18))
    assert np.abs(out - runtime(x)).max() <= 1e-5
    small = x[:, :, :11, :9]  # smaller than the fixed input: edge-replicated up to it, then cropped
    assert tiled_forward(fixed_forward, small, 4, None, 6, fixed=(20, 18)).shape == (1, 3, 44, 36)


def test_training_form_is_converted_and_verified_on_load(tmp_path):
    net = perturb(build_network(tiny_etds(3)), 0.05)
    args = {k: v for k, v in tiny_etds(3).items() if k != 'type'}
    save_checkpoint(str(tmp_path / 'etds.pth'), net.state_dict(), {'arch': 'ETDS', 'args': args})
    model = load_deploy_model(str(tmp_path / 'etds.pth'))
    assert (model.arch, model.scale, model.num_in_ch) == ('ETDSForInference', 3, 3)
    assert 'converted to ETDSForInference' in model.origin
    x = torch.rand(1, 3, 10, 9)
    assert (model.net(x) - net.eval()(x)[0].clamp(0, 1)).abs().max() <= 1e-5


def test_raw_deploy_checkpoint_that_fits_two_networks_asks_for_arch_or_opt(tmp_path):
    net = build_network({'type': 'Plain', **DEPLOYABLE['Plain'][0]})
    torch.save(net.state_dict(), tmp_path / 'plain_raw.pth')
    with pytest.raises(UserError, match='pass --arch Plain .*, or -opt'):
        load_deploy_model(str(tmp_path / 'plain_raw.pth'))
    assert load_deploy_model(str(tmp_path / 'plain_raw.pth'), arch='Plain').arch == 'Plain'


def _write(path: Path, array: np.ndarray) -> Path:
    cv2.imwrite(str(path), array)
    return path


def test_pictures_keep_gray_alpha_and_16_bit(tmp_path):
    model = deployable('ETDSForInference')
    runtime = TorchRuntime(model)
    bgr = smooth_image(13, 11, 0)
    rgba = np.concatenate([bgr, np.full((13, 11, 1), 77, np.uint8)], axis=2)
    cases = {'gray.png': (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (52, 44), np.uint8),
             'rgba.png': (rgba, (52, 44, 4), np.uint8),
             'deep.png': (bgr.astype(np.uint16) * 257, (52, 44, 3), np.uint16)}
    for name, (array, shape, dtype) in cases.items():
        result = picture_to_array(upscale_picture(read_picture(str(_write(tmp_path / name, array))), runtime, None, 6))
        assert result.shape == shape and result.dtype == dtype
    alpha = picture_to_array(upscale_picture(read_picture(str(tmp_path / 'rgba.png')), runtime, None, 6))[..., 3]
    assert (alpha == 77).all()  # a flat alpha stays flat through bicubic


def test_one_channel_model_runs_on_y_with_bicubic_chroma(tmp_path):
    model = deployable('EdgeSR')
    bgr = smooth_image(12, 10, 3)
    picture = read_picture(str(_write(tmp_path / 'c.png', bgr)))
    result = upscale_picture(picture, TorchRuntime(model), None, 3)
    assert result.bgr.shape == (24, 20, 3)
    assert not np.allclose(result.bgr[..., 0], result.bgr[..., 2])  # colour survives (from CbCr)


@pytest.mark.slow
def test_upscale_cli_writes_every_kind_and_reports_bad_files(tmp_path):
    net = perturb(build_network(tiny_etds(2)), 0.05)
    args = {k: v for k, v in tiny_etds(2).items() if k != 'type'}
    save_checkpoint(str(tmp_path / 'etds.pth'), net.state_dict(), {'arch': 'ETDS', 'args': args})
    inputs = tmp_path / 'in'
    inputs.mkdir()
    _write(inputs / 'odd.png', smooth_image(15, 21, 1))
    _write(inputs / 'gray.png', cv2.cvtColor(smooth_image(9, 8, 2), cv2.COLOR_BGR2GRAY))
    (inputs / 'broken.png').write_bytes((inputs / 'odd.png').read_bytes()[:100])
    (inputs / 'empty.png').write_bytes(b'')
    result = run_repo_script('scripts/upscale.py', '--model', str(tmp_path / 'etds.pth'), '--input', str(inputs),
                             '--output', str(tmp_path / 'out'), '--compare')
    assert result.returncode == 1, result.stderr
    assert 'wrote 2 image(s)' in result.stdout
    assert result.stderr.count('skipped:') == 2 and 'broken.png' in result.stderr and 'Traceback' not in result.stderr
    assert cv2.imread(str(tmp_path / 'out' / 'odd.png')).shape == (30, 42, 3)
    assert cv2.imread(str(tmp_path / 'out' / 'gray.png'), cv2.IMREAD_UNCHANGED).shape == (18, 16)
    assert cv2.imread(str(tmp_path / 'out' / 'odd_compare.png')).shape == (30, 84, 3)
    tiled = run_repo_script('scripts/upscale.py', '--model', str(tmp_path / 'etds.pth'), '--input',
                            str(inputs / 'odd.png'), '--output', str(tmp_path / 'tiled'), '--tile', '6')
    assert tiled.returncode == 0, tiled.stderr
    whole = cv2.imread(str(tmp_path / 'out' / 'odd.png'))
    assert np.array_equal(cv2.imread(str(tmp_path / 'tiled' / 'odd.png')), whole)
    assert list((tmp_path / 'tiled').iterdir()) == [tmp_path / 'tiled' / 'odd.png']  # nothing temporary left


@pytest.mark.slow
@pytest.mark.parametrize('extra, message', [
    (['--tile', '4'], 'smaller than twice --tile-pad'),
    (['--output', '{in}'], 'would overwrite its input'),
    (['--model', '{in}/x.onnx', '--backend', 'tflite'], 'runs on onnxruntime, not --backend tflite'),
    (['--model', '{in}/x.param', '--backend', 'openvino'], 'runs on ncnn or ncnn-vulkan, not --backend openvino'),
    (['--model', '{in}/x.mlpackage'], 'runs only on macOS'),
])
def test_upscale_cli_refuses_in_one_line(tmp_path, extra, message):
    net = build_network(tiny_etds(2))
    args = {k: v for k, v in tiny_etds(2).items() if k != 'type'}
    save_checkpoint(str(tmp_path / 'etds.pth'), net.state_dict(), {'arch': 'ETDS', 'args': args})
    (tmp_path / 'in').mkdir()
    _write(tmp_path / 'in' / 'a.png', smooth_image(8, 8, 0))
    argv = ['--model', str(tmp_path / 'etds.pth'), '--input', str(tmp_path / 'in'), '--output', str(tmp_path / 'o')]
    argv += [a.format(**{'in': tmp_path / 'in'}) for a in extra]
    result = run_repo_script('scripts/upscale.py', *argv)
    assert result.returncode == 2
    assert message in result.stderr.strip().splitlines()[-1] and 'Traceback' not in result.stderr
    assert not (tmp_path / 'o').exists()


@pytest.mark.slow
def test_upscale_backends_show_the_same_image(tmp_path):
    """--backend runs a .pth through a temporary export (TFLite and ExecuTorch fixed-size, tiled): same pixels."""
    net = perturb(build_network(tiny_etds(2)), 0.05)
    args = {k: v for k, v in tiny_etds(2).items() if k != 'type'}
    save_checkpoint(str(tmp_path / 'etds.pth'), net.state_dict(), {'arch': 'ETDS', 'args': args})
    _write(tmp_path / 'a.png', smooth_image(23, 30, 4))
    images = {}
    backends = ['torch', 'onnxruntime', 'tflite', 'ncnn', 'ncnn-vulkan', 'executorch', 'openvino']
    if importlib.import_module('ncnn').get_gpu_count() == 0:  # CI installs a CPU Vulkan driver (lavapipe)
        backends.remove('ncnn-vulkan')
    for backend in backends:  # in this process: the command line's own code, without seven interpreter starts
        args = parse_args(['--model', str(tmp_path / 'etds.pth'), '--input', str(tmp_path / 'a.png'), '--output',
                           str(tmp_path / backend), '--backend', backend, '--size', '16x16'])
        assert upscale(args) == 0, backend
        images[backend] = cv2.imread(str(tmp_path / backend / 'a.png')).astype(int)
    assert images['torch'].shape == (46, 60, 3)
    for backend in backends[1:]:  # float rounding may flip a pixel by a grey level; fp16 storage by two
        assert np.abs(images[backend] - images['torch']).max() <= (2 if backend == 'ncnn-vulkan' else 1), backend
