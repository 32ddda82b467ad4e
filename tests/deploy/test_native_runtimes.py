"""ncnn, ExecuTorch, Core ML and OpenVINO: every deployable family round-trips through the runtime apps ship."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from conftest import DEPLOYABLE, deployable
from core.deploy.export import FP16_TOLERANCE, export_model
from core.deploy.ncnn_param import parse_layers
from core.deploy.runtime_comparison import runtime_forward
from core.deploy.runtimes import open_runtime
from core.errors import UserError
from core.io.formats import EXPORT_EXTENSIONS

# What these runtimes cannot hold, with the error the runtime gives (docs/deploy.md names them too).
UNSUPPORTED = {('Bicubic', 'executorch-int8'): 'Failed to load method forward',
               ('VDSR', 'executorch-int8'): 'Failed to load method forward'}
# Tensor ops XNNPACK leaves to ExecuTorch's portable kernels, by family. A bounded dynamic program leaves copies
# with symbolic sizes there too (PixelShuffle's reshape, slices); the convs run in XNNPACK except where the graph
# builds their taps.
COPIES = {'aten_view_copy_default', 'aten_slice_copy_tensor'}
LEFT_TO_PORTABLE = {'Bicubic': {'aten_convolution_default', 'aten_repeat_default'},
                    'VDSR': {'aten_convolution_default', 'aten_repeat_default'},
                    'EdgeSR': {'aten__softmax_default', 'aten_split_with_sizes_copy_default', 'aten_sum_dim_int_list'},
                    'SESRInference': {'aten_cat_default'}}


def _assert_delegation(arch: str, note: str) -> None:
    prefix = "left to ExecuTorch's portable kernels: "
    assert note == 'every op runs in XNNPACK' or note.startswith(prefix), note
    left = set(note.removeprefix(prefix).split(', ')) if note.startswith(prefix) else set()
    assert left - COPIES <= LEFT_TO_PORTABLE.get(arch, set()), note


def _torch(model, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model.net(torch.from_numpy(x)).numpy()


def _export(model, fmt: str, folder, **options):
    return export_model(model, fmt, str(folder / f'm{EXPORT_EXTENSIONS[fmt]}'), **options)


@pytest.mark.parametrize('fmt', ['ncnn', 'openvino'])
@pytest.mark.parametrize('arch', sorted(DEPLOYABLE))
def test_any_size_runtimes_match_torch_for_every_family(arch, fmt, tmp_path):
    model = deployable(arch)
    report = _export(model, fmt, tmp_path)
    assert report.max_abs_diff <= 1e-5
    assert sorted(os.listdir(tmp_path)) == sorted(['m.bin', f'm{EXPORT_EXTENSIONS[fmt]}'])  # both, nothing else
    runtime = open_runtime(report.output)
    assert (runtime.scale, runtime.num_in_ch, runtime.radius) == (model.scale, model.num_in_ch, DEPLOYABLE[arch][1])
    x = np.random.default_rng(1).random((1, model.num_in_ch, 17, 22), dtype=np.float32)  # another size, odd
    assert np.abs(runtime(x) - _torch(model, x)).max() <= 1e-5


def test_ncnn_blobs_are_the_apps_names_and_non_contiguous_input_is_read_right(tmp_path):
    model = deployable('ETDSForInference')
    report = _export(model, 'ncnn', tmp_path)
    layers = parse_layers(open(report.output).read())
    assert layers[0].type == 'Input' and layers[0].tops == ['data'] and layers[-1].tops == ['output']
    x = np.random.default_rng(2).random((1, 20, 24, 3), dtype=np.float32).transpose(0, 3, 1, 2)  # NHWC view
    assert np.abs(open_runtime(report.output)(x) - _torch(model, np.ascontiguousarray(x))).max() <= 1e-5


def test_ncnn_app_files_are_named_for_the_apps_and_stored_in_fp16(tmp_path):
    model = deployable('ETDSForInference')  # x4
    fp32 = _export(model, 'ncnn', tmp_path)
    app = export_model(model, 'ncnn', str(tmp_path / 'etds.param'), ncnn_app='realesrgan')
    assert app.output == str(tmp_path / 'etds-x4.param') and (tmp_path / 'etds-x4.bin').is_file()
    assert not (tmp_path / 'etds.param').exists()
    assert 1e-6 < app.max_abs_diff <= FP16_TOLERANCE  # fp16 weights: close, and not the fp32 file
    fp32_bytes, fp16_bytes = (tmp_path / 'm.bin').stat().st_size, (tmp_path / 'etds-x4.bin').stat().st_size
    assert fp16_bytes < 0.6 * fp32_bytes
    assert fp32.max_abs_diff <= 1e-5


def test_ncnn_app_refuses_a_one_channel_model(tmp_path):
    with pytest.raises(UserError, match='the ncnn apps feed RGB'):
        export_model(deployable('SESRInference'), 'ncnn', str(tmp_path / 'm.param'), ncnn_app='realesrgan')
    assert list(tmp_path.iterdir()) == []


def test_ncnn_on_vulkan_runs_like_the_apps(tmp_path):
    ncnn = pytest.importorskip('ncnn')
    if ncnn.get_gpu_count() == 0:
        pytest.skip('no Vulkan device (CI installs mesa-vulkan-drivers, a CPU Vulkan driver)')
    model = deployable('ETDSForInference')
    report = _export(model, 'ncnn', tmp_path)
    runtime = open_runtime(report.output, vulkan=True)
    assert runtime.name == 'ncnn-vulkan'
    x = np.random.default_rng(3).random((1, 3, 24, 20), dtype=np.float32)
    difference = np.abs(runtime(x) - _torch(model, x)).max()
    assert 0 < difference <= FP16_TOLERANCE  # fp16 storage on the device, as the apps run it


def test_an_ncnn_file_without_its_weights_is_one_line(tmp_path):
    report = _export(deployable('Plain'), 'ncnn', tmp_path)
    os.remove(tmp_path / 'm.bin')
    with pytest.raises(UserError, match=r'needs .*m\.bin beside it'):
        open_runtime(report.output)


@pytest.mark.parametrize('arch', [pytest.param(a, marks=[] if a == 'ETDSForInference' else pytest.mark.slow)
                                  for a in sorted(DEPLOYABLE)])
def test_executorch_fp32_matches_torch_for_every_family(arch, tmp_path):
    model = deployable(arch)  # calibration patches given to a float format are not used
    report = _export(model, 'executorch', tmp_path, size=(24, 28), calibration=_calibration(model.num_in_ch, (8, 8)))
    assert report.max_abs_diff <= 1e-5
    _assert_delegation(arch, report.note)
    runtime = open_runtime(report.output)
    assert runtime.fixed_size is None and runtime.max_size == (24, 28)  # any size up to the export size
    assert (runtime.scale, runtime.num_in_ch, runtime.radius) == (model.scale, model.num_in_ch, DEPLOYABLE[arch][1])
    rng = np.random.default_rng(4)
    small, large = (rng.random((1, model.num_in_ch, *size), dtype=np.float32) for size in ((13, 9), (41, 50)))
    assert np.abs(runtime(small) - _torch(model, small)).max() <= 1e-5  # whole, as torch runs it
    tiled = runtime_forward(runtime, runtime.radius)(torch.from_numpy(large)).numpy()  # tiled to the bound
    assert np.abs(tiled - _torch(model, large)).max() <= 1e-5


def _calibration(num_in_ch: int, size: tuple[int, int]) -> list[np.ndarray]:
    return [np.random.default_rng(i).random((1, num_in_ch, *size), dtype=np.float32) for i in range(4)]


@pytest.mark.parametrize('arch', [pytest.param(a, marks=[] if a == 'Plain' else pytest.mark.slow)
                                  for a in sorted(DEPLOYABLE)])
def test_executorch_int8_is_close_or_refused_in_one_line(arch, tmp_path):
    model = deployable(arch)
    options = dict(size=(24, 28), calibration=_calibration(model.num_in_ch, (24, 28)))
    if arch != 'Plain':  # the lowering is under test here; the int8 preparation has its own tests (and Plain)
        options |= dict(equalized=False, rounding='nearest')
    if (arch, 'executorch-int8') in UNSUPPORTED:
        with pytest.raises(UserError, match=UNSUPPORTED[arch, 'executorch-int8']):
            _export(model, 'executorch-int8', tmp_path, **options)
        assert list(tmp_path.iterdir()) == []
        return
    report = _export(model, 'executorch-int8', tmp_path, **options)
    assert 0 < report.mean_abs_diff <= 0.02
    _assert_delegation(arch, report.note)


@pytest.mark.parametrize('arch', [pytest.param(a, marks=[] if a in ('ETDSForInference', 'VDSR') else pytest.mark.slow)
                                  for a in sorted(DEPLOYABLE)])
def test_core_ml_programs_are_converted_and_read_back(arch, tmp_path):
    model = deployable(arch)
    fp32 = _export(model, 'coreml', tmp_path)
    assert 'checked, not run' in fp32.note and (tmp_path / 'm.mlpackage' / 'Manifest.json').is_file()
    computed = arch in ('Bicubic', 'VDSR')  # their bicubic taps are built in the graph
    assert ('not compared' if computed else 'conv weights within 0 of the network') in fp32.note
    fp16 = export_model(model, 'coreml-fp16', str(tmp_path / 'h.mlpackage'))
    assert 'in fp16' in fp16.note
    int8w = export_model(model, 'coreml-int8w', str(tmp_path / 'w.mlpackage'))
    assert 'int8 weights in every conv' in int8w.note and 'constexpr' in int8w.note
    with pytest.raises(UserError, match='runs only on macOS'):
        open_runtime(str(tmp_path / 'm.mlpackage'))


@pytest.mark.parametrize('module, package, extra', [('openvino', 'openvino', 'openvino'), ('pnnx', 'pnnx', 'ncnn'),
                                                    ('coremltools', 'coremltools', 'coreml')])
def test_a_missing_runtime_names_its_own_extra(monkeypatch, module, package, extra):
    from core.deploy.optional import require

    monkeypatch.setitem(__import__('sys').modules, module, None)  # what an absent package looks like to import
    with pytest.raises(UserError, match=rf"{package} is not installed .*'\.\[{extra}\]'"):
        require(module, package)


def test_executorch_takes_inputs_whose_size_one_dimensions_have_stride_zero(tmp_path):
    """numpy gives size-1 dimensions any stride (a one-channel image from HWC does get 0); ExecuTorch refused them."""
    from core.deploy.executorch_export import export_executorch

    model = deployable('SESRInference')  # one channel
    image = np.random.default_rng(5).random((24, 28, 1), dtype=np.float32)
    x = np.lib.stride_tricks.as_strided(image, (1, 1, 24, 28), (0, 0, 28 * 4, 4))
    assert 0 in torch.from_numpy(x).stride()
    export_executorch(model.net, str(tmp_path / 'm.pte'), torch.from_numpy(x), {'scale': 4, 'num_in_ch': 1,
                                                                                 'radius': 7})
    out = open_runtime(str(tmp_path / 'm.pte'))(x)
    assert np.abs(out - _torch(model, np.ascontiguousarray(x).copy())).max() <= 1e-5
