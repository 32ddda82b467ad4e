"""Real-ESRGAN-ncnn-vulkan's tiling and mirrored borders, re-done in NumPy, and what they cost a model trained
with zero padding (the figure docs/deploy.md gives)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import SHARED_BENCHMARKS, deployable
from core.deploy.app_tiling import PREPADDING, app_forward, mirror_index
from core.deploy.runtimes import TorchRuntime

CHECKPOINTS = SHARED_BENCHMARKS.parent / 'checkpoints'


def test_the_mirror_does_not_repeat_the_edge_pixel():
    assert mirror_index(np.arange(-3, 8), 5).tolist() == [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]


def test_tiles_equal_the_whole_image_with_mirrored_borders():
    """Interior tiles see real neighbours (10 px ≥ the radius): tiling adds nothing beyond the mirrored border."""
    model = deployable('ETDSForInference')  # radius 6, x4
    runtime = TorchRuntime(model)
    lq = np.random.default_rng(0).random((1, 3, 30, 41), dtype=np.float32)
    tiled = app_forward(runtime, lq, tilesize=8)
    pixels = (np.round(lq * 255) / 255).astype(np.float32)
    padded = np.pad(pixels, ((0, 0), (0, 0), (PREPADDING,) * 2, (PREPADDING,) * 2), mode='reflect')
    with torch.inference_mode():
        whole = model.net(torch.from_numpy(padded)).numpy()
    crop = PREPADDING * model.scale
    expected = np.floor(np.clip(whole[:, :, crop:-crop, crop:-crop] * 255 + 0.5, 0, 255)) / 255
    differing = np.abs(tiled - expected) > 0
    assert tiled.shape == (1, 3, 120, 164)
    assert np.abs(tiled - expected).max() <= 1 / 255 + 1e-7 and differing.mean() < 1e-3  # float rounding only


@pytest.mark.slow
def test_the_apps_mirrored_borders_cost_what_the_docs_say(tmp_path):
    """Official ETDS_M4C32 x2 as an app file (fp16), through the apps' tiling: −0.036 dB on Set5 (docs/deploy.md),
    all of it at the border: the same file with zero padding loses 0.000."""
    from core.deploy.export import export_model
    from core.deploy.model import load_deploy_model
    from core.deploy.native_runtimes import NcnnRuntime
    from core.deploy.paired_psnr import y_psnr
    from core.deploy.runtime_comparison import app_runtime_forward, runtime_forward

    checkpoint, set5 = CHECKPOINTS / 'ETDS' / 'ETDS_M4C32_x2.pth', SHARED_BENCHMARKS / 'Set5'
    if not checkpoint.is_file() or not set5.is_dir():
        pytest.skip('../shared/checkpoints and ../shared/benchmarks are only on the project machines')
    model = load_deploy_model(str(checkpoint))
    report = export_model(model, 'ncnn', str(tmp_path / 'etds.param'), ncnn_app='realesrgan')
    runtime = NcnnRuntime(report.output, fp16=True)
    fp32 = y_psnr(model.net, str(set5), 2)
    zero_padded = y_psnr(runtime_forward(runtime, 10), str(set5), 2)
    app = y_psnr(app_runtime_forward(report.output), str(set5), 2)
    assert abs(zero_padded - fp32) <= 0.002, (fp32, zero_padded)  # fp16 storage: −0.0004 measured
    assert app - fp32 == pytest.approx(-0.036, abs=0.002), (fp32, app)
