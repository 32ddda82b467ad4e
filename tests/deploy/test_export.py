"""Export: ONNX round trips for every deployable family, real int8 TFLite, ORT int8, and the refusals."""

from __future__ import annotations

import builtins

import cv2
import numpy as np
import onnx
import pytest
import torch
from basicsr.archs import build_network

from conftest import DEPLOYABLE, deployable, perturb, run_repo_script, smooth_image, tiny_etds
from core.deploy.export import check_image, export_model
from core.deploy.onnx_export import export_onnx
from core.deploy.optional import require
from core.deploy.runtime_check import runtime_difference
from core.deploy.runtimes import OnnxRuntime, TFLiteRuntime
from core.deploy.tflite_flatbuffer import operator_types, read_metadata
from core.errors import UserError
from core.io.checkpoint import save_checkpoint


@pytest.mark.parametrize('arch', sorted(DEPLOYABLE))
def test_onnx_round_trip_for_every_deployable_family(arch, tmp_path):
    model = deployable(arch)
    report = export_model(model, 'onnx', str(tmp_path / 'm.onnx'))
    assert report.max_abs_diff <= 1e-5
    runtime = OnnxRuntime(str(tmp_path / 'm.onnx'))
    assert (runtime.scale, runtime.num_in_ch, runtime.meta['radius']) == (model.scale, model.num_in_ch,
                                                                          DEPLOYABLE[arch][1])
    x = np.random.default_rng(0).random((1, model.num_in_ch, 17, 22), dtype=np.float32)  # another size: dynamic
    with torch.inference_mode():
        assert np.abs(runtime(x) - model.net(torch.from_numpy(x)).numpy()).max() <= 1e-5


def test_onnx_options_uint8_nhwc_and_reshape_lowering(tmp_path):
    model = deployable('ETDSForInference')
    x = check_image(3, (20, 24))
    export_onnx(model.net, str(tmp_path / 'u8.onnx'), 3, {'arch': 'test'}, nhwc_uint8=True)
    graph = onnx.load(str(tmp_path / 'u8.onnx')).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert graph.input[0].type.tensor_type.shape.dim[3].dim_value == 3  # N H W C
    u8 = OnnxRuntime(str(tmp_path / 'u8.onnx'))
    assert runtime_difference(u8, model.net, x, pixels=True, uint8_input=True)[0] <= 0.5 / 255 + 1e-5
    for lowering, present, absent in (('depth-to-space', 'DepthToSpace', 'Transpose'),
                                      ('reshape', 'Transpose', 'DepthToSpace')):
        export_onnx(model.net, str(tmp_path / 'f.onnx'), 3, {'arch': 'test'}, pixel_shuffle=lowering)
        ops = {node.op_type for node in onnx.load(str(tmp_path / 'f.onnx')).graph.node}
        assert present in ops and absent not in ops
        assert runtime_difference(OnnxRuntime(str(tmp_path / 'f.onnx')), model.net, x)[0] <= 1e-5


def _calibration(num_in_ch: int, size: tuple[int, int], count: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((1, num_in_ch, *size), dtype=np.float32) for _ in range(count)]


@pytest.mark.slow
def test_tflite_fp32_and_real_int8(tmp_path):
    model = deployable('ETDSForInference')
    size = (16, 20)
    fp32 = export_model(model, 'tflite', str(tmp_path / 'f.tflite'), size=size)
    assert fp32.max_abs_diff <= 1e-5
    int8 = export_model(model, 'tflite-int8', str(tmp_path / 'q.tflite'), size=size,
                        calibration=_calibration(3, size))
    assert int8.mean_abs_diff <= 0.02
    ops = operator_types(str(tmp_path / 'q.tflite'))
    convs = [op for op in ops if op.op == 'CONV_2D']
    assert len(convs) == 7  # conv_first, 4 blocks, conv_last, conv_clip
    for conv in convs:  # int8 activations and weights, int32 bias, int8 output: no float conv, no dequantize
        assert conv.inputs == ('INT8', 'INT8', 'INT32') and conv.outputs == ('INT8',)
    assert not any(op.op == 'DEQUANTIZE' for op in ops)
    runtime = TFLiteRuntime(str(tmp_path / 'q.tflite'))
    for edge in (runtime.input, runtime.output):  # pixels map exactly: q = u8 − 128
        assert edge['dtype'] == np.int8
        assert edge['quantization'] == (pytest.approx(1 / 255, rel=1e-7), -128)
    assert runtime.fixed_size == size and runtime.scale == 4
    assert read_metadata(str(tmp_path / 'q.tflite'))['radius'] == 6
    assert read_metadata(str(tmp_path / 'f.tflite'))['format'] == 'tflite'


def test_onnx_int8_is_qdq_and_close_to_fp32(tmp_path):
    model = deployable('Plain')
    report = export_model(model, 'onnx-int8', str(tmp_path / 'q.onnx'), calibration=_calibration(3, (24, 24)))
    ops = [node.op_type for node in onnx.load(str(tmp_path / 'q.onnx')).graph.node]
    assert ops.count('QuantizeLinear') >= 4 and 'Conv' in ops
    assert report.mean_abs_diff <= 0.02 and report.max_abs_diff > 0  # quantized, and still close


@pytest.mark.parametrize('arch, convs', [('VDSR', 5), ('Bicubic', 1)])
def test_int8_calibration_reads_weights_the_graph_computes_as_weights(arch, convs):
    """Their bicubic taps are a repeat of a buffer: observed per channel like stored weights, never taken for an
    activation (whose range is one scale: reading it as one raised a bare ValueError in every int8 export)."""
    from core.deploy.pt2e_calibration import calibrated_graph, observed_ranges
    from core.deploy.pt2e_observers import weight_observers

    model = deployable(arch)
    graph, _, _ = calibrated_graph(model.net, _calibration(model.num_in_ch, (24, 28)), narrow_ranges=True)
    assert len(weight_observers(graph)) == convs  # the bicubic conv's taps among them
    ranges = observed_ranges(graph)
    assert ranges and all(isinstance(lo, float) and isinstance(hi, float) and lo < hi for lo, hi in ranges.values())


@pytest.mark.slow
def test_failed_check_writes_nothing(tmp_path):
    model = deployable('ETDSForInference')
    with pytest.raises(UserError, match='was not written'):
        export_model(model, 'tflite-int8', str(tmp_path / 'q.tflite'), size=(16, 20),
                     calibration=_calibration(3, (16, 20)), int8_tolerance=1e-9)
    with pytest.raises(UserError, match='was not written'):
        export_model(model, 'onnx', str(tmp_path / 'f.onnx'), tolerance=-1.0)  # no file can pass
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left behind


def test_unexportable_op_is_named_with_its_layer(tmp_path):
    class Zeta(torch.nn.Module):
        def forward(self, y: torch.Tensor) -> torch.Tensor:
            return torch.special.zeta(y.abs() + 2, torch.ones_like(y))

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 3, padding=1), Zeta(), torch.nn.PixelShuffle(2))
    with pytest.raises(UserError, match=r"op 'prims.zeta' \(in layer 1\) has no ONNX translation"):
        export_onnx(net, str(tmp_path / 'z.onnx'), 3, {'arch': 'Zeta'})


def test_missing_optional_package_names_the_install(monkeypatch):
    real_import = builtins.__import__

    def no_litert(name, *args, **kwargs):
        if name.startswith('litert_torch'):
            raise ImportError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_litert)
    monkeypatch.delitem(__import__('sys').modules, 'litert_torch', raising=False)
    with pytest.raises(UserError, match=r"litert-torch is not installed .*\[export\]"):
        require('litert_torch', 'litert-torch')


def _etds_checkpoint(tmp_path) -> str:
    net = perturb(build_network(tiny_etds(2)), 0.05)
    args = {k: v for k, v in tiny_etds(2).items() if k != 'type'}
    save_checkpoint(str(tmp_path / 'etds.pth'), net.state_dict(), {'arch': 'ETDS', 'args': args})
    return str(tmp_path / 'etds.pth')


@pytest.mark.slow
def test_export_cli_end_to_end_with_evaluation(tmp_path):
    from conftest import write_edsr_pairs

    ckpt = _etds_checkpoint(tmp_path)
    pairs = write_edsr_pairs(tmp_path / 'set', 2, [(24, 20), (18, 26)])
    result = run_repo_script('scripts/export.py', '--model', ckpt, '--format', 'tflite-int8', '--output',
                             str(tmp_path / 'e.tflite'), '--size', '12x16', '--calib',
                             str(pairs / 'LR_bicubic' / 'X2'), '--calib-count', '3', '--eval-data', str(pairs))
    assert result.returncode == 0, result.stderr
    assert 'int8 check: 4 of 4 CONV_2D run on int8 tensors' in result.stdout  # first, 1 block, last, clip
    assert 'set Y-PSNR: torch fp32' in result.stdout and 'tflite (e.tflite)' in result.stdout
    upscaled = run_repo_script('scripts/upscale.py', '--model', str(tmp_path / 'e.tflite'), '--input',
                               str(pairs / 'LR_bicubic' / 'X2'), '--output', str(tmp_path / 'up'))
    assert upscaled.returncode == 0, upscaled.stderr  # a 12×16 file tiles 9×13 and 13×12 images
    assert cv2.imread(str(tmp_path / 'up' / 'img1x2.png')).shape == (18, 26, 3)


@pytest.mark.slow
def test_export_cli_writes_the_apps_ncnn_files_and_what_the_apps_borders_cost(tmp_path):
    from conftest import write_edsr_pairs

    ckpt = _etds_checkpoint(tmp_path)
    pairs = write_edsr_pairs(tmp_path / 'set', 2, [(40, 36)])
    result = run_repo_script('scripts/export.py', '--model', ckpt, '--format', 'ncnn', '--ncnn-app', 'realesrgan',
                             '--output', str(tmp_path / 'models' / 'tiny.param'), '--eval-data', str(pairs))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / 'models').iterdir()) == ['tiny-x2.bin', 'tiny-x2.param']
    assert f"wrote {tmp_path / 'models' / 'tiny-x2.param'} and {tmp_path / 'models' / 'tiny-x2.bin'}" in result.stdout
    assert '-n tiny-x2 -s 2' in result.stdout
    assert 'as Real-ESRGAN-ncnn-vulkan and Upscayl run tiny-x2.param' in result.stdout
    assert 'ncnn (tiny-x2.param)' in result.stdout  # the file on ncnn's CPU runtime, beside torch


@pytest.mark.slow
@pytest.mark.parametrize('extra, message', [
    (['--format', 'onnx', '--output', '{tmp}/x.tflite'], 'writes a .onnx file'),
    (['--format', 'onnx-int8', '--output', '{tmp}/x.onnx'], 'needs calibration images'),
    (['--format', 'onnx', '--output', '{tmp}/etds.onnx', '--model', '{tmp}/etds.onnx'], 'is the input model'),
    (['--format', 'tflite-int8', '--output', '{tmp}/x.tflite', '--calib', '{tmp}/empty'], 'holds no images'),
    (['--format', 'tflite-int8', '--output', '{tmp}/x.tflite', '--calib', '{tmp}/gray'], 'only grayscale images'),
    (['--format', 'onnx', '--output', '{tmp}/x.onnx', '--ncnn-app', 'realesrgan'], 'is an option of --format ncnn'),
    (['--format', 'ncnn', '--output', '{tmp}/x.bin'], 'writes a .param file'),
])
def test_export_cli_refuses_in_one_line(tmp_path, extra, message):
    ckpt = _etds_checkpoint(tmp_path)
    (tmp_path / 'etds.onnx').write_bytes(b'')
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'gray').mkdir()
    cv2.imwrite(str(tmp_path / 'gray' / 'g.png'), cv2.cvtColor(smooth_image(16, 16, 0), cv2.COLOR_BGR2GRAY))
    argv = ['--model', ckpt, '--size', '8x8'] + [a.format(tmp=tmp_path) for a in extra]
    result = run_repo_script('scripts/export.py', *argv)
    assert result.returncode == 2
    assert message in result.stderr.strip().splitlines()[-1] and 'Traceback' not in result.stderr
    assert not (tmp_path / 'x.onnx').exists() and not (tmp_path / 'x.tflite').exists()


@pytest.mark.parametrize('arch', sorted(DEPLOYABLE))
def test_safetensors_export_rebuilds_every_deployable_family_from_the_file(arch, tmp_path):
    from core.deploy.model import load_deploy_model
    from core.io.checkpoint import load_checkpoint

    model = deployable(arch)
    report = export_model(model, 'safetensors', str(tmp_path / 'm.safetensors'))
    assert report.max_abs_diff == 0.0
    state, meta = load_checkpoint(str(tmp_path / 'm.safetensors'))
    assert (meta['arch'], meta['scale'], meta['format']) == (arch, model.scale, 'safetensors')
    again = load_deploy_model(str(tmp_path / 'm.safetensors'))
    x = torch.from_numpy(check_image(model.num_in_ch, (17, 22)))
    with torch.inference_mode():
        assert torch.equal(again.net(x), model.net(x))


def test_ranges_before_a_saturating_activation_are_chosen_by_the_error_after_it():
    from core.deploy.int8_grid import range_for_activation

    # A pre-tanh tensor spread over ±275 (as ESPCN's first conv): tanh is flat beyond ±4, so levels go inside.
    values = torch.cat([torch.randn(200_000, generator=torch.Generator().manual_seed(0)),
                        torch.linspace(-275, 275, 200)])
    histogram = torch.histc(values, bins=2048, min=-275, max=275)
    lo, hi = range_for_activation(histogram, -275.0, 275.0, torch.tanh)
    assert -10 < lo < -2 and 2 < hi < 10, (lo, hi)
    relu_like = range_for_activation(histogram, -275.0, 275.0, lambda v: torch.where(v > 0, v, 0.01 * v))
    assert relu_like[1] > 2 and relu_like[0] > -275  # the negative side, shrunk 100×, is clipped first


def test_a_folded_clamp_quantizes_its_input_on_the_output_range(tmp_path):
    from core.deploy.ort_quantization import unit_clip_inputs
    from core.deploy.pt2e_calibration import litert_quantizer, unit_clip_input_observers
    from core.deploy.wrappers import NetworkOutput

    pt2e = require('torchao.quantization.pt2e.quantize_pt2e', 'torchao')
    folded = perturb(build_network(tiny_etds()), 0.05).to_deploy('et')
    graph = torch.export.export(NetworkOutput(folded).eval(), (torch.rand(1, 3, 16, 16),)).module()
    prepared = pt2e.prepare_pt2e(graph, litert_quantizer())
    (observer,) = unit_clip_input_observers(prepared)
    clip = next(n for n in prepared.graph.nodes if n.op == 'call_function' and n.args and
                getattr(n.args[0], 'target', None) == observer)
    assert clip.target is torch.ops.aten.conv2d.default  # the observer feeds the 1×1 clip conv
    random = deployable('ETDSForInference').net  # random weights: no −I conv, nothing pinned
    graph = torch.export.export(NetworkOutput(random).eval(), (torch.rand(1, 3, 16, 16),)).module()
    assert unit_clip_input_observers(pt2e.prepare_pt2e(graph, litert_quantizer())) == []
    export_onnx(folded, str(tmp_path / 'f.onnx'), 3, {'arch': 'test'})
    assert len(unit_clip_inputs(onnx.load(str(tmp_path / 'f.onnx')))) == 1


def test_activation_ranges_chosen_by_the_output_error_lower_the_converted_graphs_error():
    from core.deploy.output_ranges import ranges_summary
    from core.deploy.pt2e_calibration import quantize_pt2e
    from core.deploy.ptq import prepare_for_int8
    from core.deploy.wrappers import NetworkOutput

    folded = perturb(build_network(tiny_etds()), 0.05).to_deploy('et').eval()
    calibration = [np.ascontiguousarray(smooth_image(24, 24, i)[..., ::-1].transpose(2, 0, 1)[None] / 255,
                                        dtype=np.float32) for i in range(6)]
    prepared = prepare_for_int8(folded, calibration).net
    reference = NetworkOutput(prepared)
    errors = {}
    for narrow in (False, True):
        converted, _, choices = quantize_pt2e(prepared, calibration, narrow_ranges=narrow)
        with torch.no_grad():
            errors[narrow] = sum(float(((converted(torch.from_numpy(p)) - reference(torch.from_numpy(p))) ** 2).sum())
                                 for p in calibration)
    # the three ReLU outputs are searched; the pinned input, clamp input and output are not
    assert len(choices) == 3 and ranges_summary(choices) == '1 of 3 activation ranges rescaled by the output error'
    moved = next(choice for choice in choices if choice.after != choice.before)
    assert moved.after[1] < moved.before[1]
    assert errors[True] < 0.9 * errors[False], errors  # the simulation the search ran is the converted graph


@pytest.mark.parametrize('arch', ['ETDSForInference', 'ECBSRET', 'ABPN_ET', 'ESPCN', 'FSRCNN', 'Plain'])
def test_onnx_runtime_finds_every_range_the_pt2e_calibration_chose_by_name(arch, tmp_path):
    """ORT takes the LiteRT path's ranges by tensor name: torch.export's node names must be the ONNX value names,
    or ORT would fall back to its own histogram ranges. (Where the exporter decomposes an op, it renames it, and
    that tensor keeps ORT's own range: SESR's add of a repeat_interleave becomes 'add_41'.)"""
    from core.deploy.pt2e_calibration import calibrated_graph, edge_observers, observed_ranges

    model = deployable(arch)
    calibration = _calibration(model.num_in_ch, (20, 20), count=2)
    graph, _, _ = calibrated_graph(model.net.float().eval(), calibration)
    ranges = observed_ranges(graph)
    export_onnx(model.net, str(tmp_path / 'f.onnx'), model.num_in_ch, {'arch': arch})
    values = {name for node in onnx.load(str(tmp_path / 'f.onnx')).graph.node for name in node.output}
    (network_input,) = [node.all_input_nodes[0].name for node in graph.graph.nodes
                        if node.target in edge_observers(graph)[0]]
    assert len(ranges) >= 3 and set(ranges) - values == {network_input}, set(ranges) - values


@pytest.mark.slow
@pytest.mark.parametrize('fmt', ['tflite-int8', 'onnx-int8'])
def test_int8_preparation_is_reported_and_can_be_switched_off(fmt, tmp_path):
    model = deployable('ECBSRET')
    size = (16, 20)
    path = str(tmp_path / ('q.tflite' if fmt == 'tflite-int8' else 'q.onnx'))
    prepared = export_model(model, fmt, path, size=size, calibration=_calibration(3, size), int8_tolerance=1)
    assert 'PReLU layers run as ReLU on split channels' in prepared.int8_preparation
    assert 'conv pairs rescaled' in prepared.int8_preparation and 'rounded by GPTQ' in prepared.int8_preparation
    plain = export_model(model, fmt, path, size=size, calibration=_calibration(3, size), int8_tolerance=1,
                         equalized=False, rounding='nearest')
    assert plain.int8_preparation == 'no int8 preparation (nearest rounding, no rescaling)'


def test_calibration_images_smaller_than_the_patch_are_named_in_one_line(tmp_path):
    from core.deploy.calibration import calibration_patches

    for i, (h, w) in enumerate([(20, 30), (50, 60)]):
        cv2.imwrite(str(tmp_path / f'{i}.png'), smooth_image(h, w, i))
    notes = []
    patches = calibration_patches(str(tmp_path), (40, 40), 4, 3, on_note=notes.append)
    assert [p.shape for p in patches] == [(1, 3, 40, 40)] * 4
    assert notes == [f'calibration: 1 of 2 images in {tmp_path} are smaller than the 40x40 patch and were mirrored '
                     'up to it; patches of at most 20x30 (TFLite: --size) would use them whole']
    calibration_patches(str(tmp_path), (20, 30), 4, 3, on_note=notes.append)
    assert len(notes) == 1  # images at least as large as the patch: nothing to say


def test_onnx_int8_ranges_are_the_ones_gptq_rounded_for(tmp_path):
    """ORT reads every activation on the grid the histogram observer picks, as LiteRT and GPTQ rounding do."""
    from core.deploy.int8_grid import activation_observer, observed_qparams
    from core.deploy.ort_quantization import activation_ranges

    model = deployable('Plain')
    export_onnx(model.net, str(tmp_path / 'f.onnx'), 3, {'arch': 'Plain'})
    graph = onnx.load(str(tmp_path / 'f.onnx'))
    calibration = _calibration(3, (24, 24))
    ranges = activation_ranges(graph, calibration)
    first_relu = next(node.output[0] for node in graph.graph.node if node.op_type == 'Relu')
    with torch.no_grad():
        activation = torch.cat([torch.relu(model.net.conv_first(torch.from_numpy(p))).flatten() for p in calibration])
    scale, zero_point = observed_qparams(activation, activation_observer())
    assert ranges[first_relu] == pytest.approx(((-128 - zero_point) * scale, (127 - zero_point) * scale), rel=1e-5)


def test_onnx_int8_fits_the_range_before_a_tanh_by_the_error_after_it(tmp_path):
    from core.deploy.ort_quantization import activation_ranges

    model = deployable('ESPCN')  # conv → tanh → conv → tanh → conv → shuffle → sigmoid
    with torch.no_grad():
        model.net.conv1.weight.mul_(200)  # a pre-tanh tensor far wider than where tanh is not flat
    export_onnx(model.net, str(tmp_path / 'f.onnx'), 3, {'arch': 'ESPCN'})
    calibration = _calibration(3, (24, 24))
    graph = onnx.load(str(tmp_path / 'f.onnx'))
    ranges = activation_ranges(graph, calibration)
    saturating = [node.input[0] for node in graph.graph.node if node.op_type in ('Tanh', 'Sigmoid')]
    assert len(saturating) == 3  # two tanh inputs and the sigmoid's
    ranges = {name: ranges[name] for name in saturating}
    with torch.no_grad():
        z = torch.cat([model.net.conv1(torch.from_numpy(patch)) for patch in calibration])
    first = max(ranges.values(), key=lambda r: r[1] - r[0])  # conv1's output: the widest of the three
    assert first[1] - first[0] < (z.max() - z.min()) / 4  # levels go where tanh is not flat, not over the span
