"""Quantization-aware training from YAML: the switch, checkpoints, resume, EMA and the int8 export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import DEPLOYABLE, deployable, training_opt, write_edsr_pairs, write_yaml
from core.deploy.export import check_image, export_model
from core.deploy.int8_grid import row_scales
from core.deploy.model import build_deployable, load_deploy_model
from core.deploy.qat import check_qat_options, prepare_qat, weight_fake_quantizers
from core.deploy.runtimes import TFLiteRuntime, open_runtime
from core.deploy.tflite_export import export_qat_tflite
from core.deploy.tflite_flatbuffer import operator_types
from core.errors import UserError
from core.io.checkpoint import load_checkpoint
from core.training.pipelines import train_pipeline


@pytest.mark.parametrize('qat, message', [
    ({'weight_bits': 4}, 'supports 8-bit weights and activations'),
    ({'start_iters': 3}, 'does not take start_iters'),
    ({'start_iter': -1}, 'whole number >= 0'),
])
def test_qat_options_are_checked(qat, message):
    with pytest.raises(UserError, match=message):
        check_qat_options(qat)


@pytest.fixture(scope='module')
def qat_run(tmp_path_factory):
    """A tiny ETDS trained 2 float iterations, then 3 with QAT (EMA on); checkpoints every 2 iterations."""
    root = tmp_path_factory.mktemp('qat')
    data = write_edsr_pairs(root / 'data', 2, [(32, 32), (40, 36), (36, 44)])
    opt = training_opt(data, name='qat_tiny', total_iter=5, qat={'start_iter': 3})
    opt['logger']['save_checkpoint_freq'] = 4
    yml = write_yaml(root / 'qat.yml', opt)
    experiment = train_pipeline(str(root), ['-opt', yml])
    return root, yml, data, experiment


@pytest.mark.slow
def test_qat_checkpoint_is_the_deploy_form_with_ranges(qat_run):
    _, _, _, experiment = qat_run
    state, meta = load_checkpoint(f'{experiment}/models/net_g_latest.pth')
    assert meta['arch'] == 'ETDSForInference' and meta['qat'] == {'weight_bits': 8, 'act_bits': 8, 'start_iter': 3}
    assert 'conv_first.weight' in state and any('activation_post_process' in k for k in state)
    model = load_deploy_model(f'{experiment}/models/net_g_latest.pth')
    graph = model.qat_graph
    scales = {name: m.scale.item() for name, m in graph.named_modules()
              if type(m).__name__ == 'FixedQParamsFakeQuantize'}
    assert len(scales) == 2 and all(s == pytest.approx(1 / 255) for s in scales.values())  # input and output


def test_ema_follows_the_training_graph_ranges(qat_run):
    _, _, _, experiment = qat_run
    params, _ = load_checkpoint(f'{experiment}/models/net_g_latest.pth', param_key='params')
    ema, _ = load_checkpoint(f'{experiment}/models/net_g_latest.pth', param_key='params_ema')
    ranges = [k for k in params if k.endswith('.scale')]
    assert ranges and all(torch.equal(params[k], ema[k]) for k in ranges)  # ranges copied, not averaged
    assert not torch.equal(params['conv_first.weight'], ema['conv_first.weight'])  # weights averaged


@pytest.mark.slow
def test_qat_resumes_from_a_quantized_state(qat_run):
    root, yml, _, experiment = qat_run
    (root / 'experiments' / 'qat_tiny' / 'models' / 'net_g_latest.pth').unlink()
    train_pipeline(str(root), ['-opt', yml, '--auto_resume'])  # from 4.state, a QAT state, to iteration 5
    _, meta = load_checkpoint(f'{experiment}/models/net_g_latest.pth')
    assert meta['qat']['start_iter'] == 3 and meta['arch'] == 'ETDSForInference'


@pytest.mark.slow
def test_qat_exports_real_int8_without_calibration(qat_run, tmp_path):
    _, _, _, experiment = qat_run
    model = load_deploy_model(f'{experiment}/models/net_g_latest.pth')
    report = export_model(model, 'tflite-int8', str(tmp_path / 'q.tflite'), size=(12, 14))
    convs = [op for op in operator_types(str(tmp_path / 'q.tflite')) if op.op == 'CONV_2D']
    assert len(convs) == 4 and all(op.inputs == ('INT8', 'INT8', 'INT32') for op in convs)
    x = check_image(3, (12, 14))
    with torch.inference_mode():
        fake = model.qat_graph(torch.from_numpy(x)).numpy()
    real = TFLiteRuntime(str(tmp_path / 'q.tflite'))(x)
    assert np.abs(real - fake).mean() <= 1 / 255  # the file runs what QAT trained, up to int8 rounding order
    # export checked the file against that graph, not against the float weights alone (which are not the model)
    assert report.mean_abs_diff == pytest.approx(float(np.abs(real - fake).mean()), abs=1e-7)
    program = export_model(model, 'executorch-int8', str(tmp_path / 'q.pte'), size=(12, 14))  # no calibration
    on_executorch = open_runtime(program.output)(x)
    assert np.abs(on_executorch - fake).mean() <= 1 / 255 and np.abs(on_executorch - fake).max() <= 2 / 255
    assert program.mean_abs_diff == pytest.approx(float(np.abs(on_executorch - fake).mean()), abs=1e-7)


@pytest.mark.parametrize('arch', sorted(a for a in DEPLOYABLE if a != 'Bicubic'))  # Bicubic has no weights
def test_every_deployable_family_trains_with_fake_quantization(arch):
    model = deployable(arch)
    graph = prepare_qat(model.net)
    x = torch.rand(2, model.num_in_ch, 12, 10, generator=torch.Generator().manual_seed(0))
    out = graph(x)
    assert out.shape == (2, model.num_in_ch if arch != 'EdgeSR' else 1, 12 * model.scale, 10 * model.scale)
    out.abs().mean().backward()
    grads = [p.grad for p in graph.parameters()]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_the_fake_quantized_graph_is_the_int8_model_export_converts():
    """Weights train on the runtime's step (max|w|/127) and evaluation moves no range, so the trained graph and
    its conversion compute the same thing (torchao's fused fake-quant used ATen's step, max(−min/128, max/127))."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    model = deployable('ETDSForInference')
    graph = prepare_qat(model.net)
    optimizer = torch.optim.Adam(graph.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    graph.train()
    for _ in range(3):
        loss = graph(torch.rand(2, 3, 16, 16, generator=generator)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    graph(torch.rand(2, 3, 16, 16, generator=generator))  # the steps observed on the weights as they are now
    graph.eval()
    names = weight_fake_quantizers(graph)
    assert len(names) == 7  # conv_first, 4 backbone convs, conv_last, the clamp's clip conv
    for name in names:
        scale = graph.get_submodule(name).scale.clone()
        weight = graph.get_parameter(next(n for n in graph.graph.nodes if n.target == name).args[0].target)
        assert torch.allclose(scale, row_scales(weight.detach()), rtol=1e-6), name  # trained on the runtime's step
    x = torch.rand(1, 3, 20, 18, generator=generator)
    before = {k: v.clone() for k, v in graph.state_dict().items()}
    with torch.no_grad():
        fake = graph(x)
    assert all(torch.equal(v, graph.state_dict()[k]) for k, v in before.items())  # eval observes nothing
    with torch.no_grad():
        converted = convert_pt2e(graph, fold_quantize=False)(x)
    assert float((converted - fake).abs().max()) < 1e-5


@pytest.mark.slow
def test_sesr_with_relu_is_the_reference_int8_case(tmp_path):
    """The SESR paper's int8 path: collapsed SESR with ReLU, QAT, then a TFLite file whose convs are all int8."""
    args = {'num_in_ch': 1, 'num_out_ch': 1, 'upscale': 2, 'm': 3, 'int_features': 8, 'relu_act': True}
    model = build_deployable('SESRInference', args)
    graph = prepare_qat(model.net)
    optimizer = torch.optim.Adam(graph.parameters(), 1e-3)
    for _ in range(3):
        optimizer.zero_grad()
        graph(torch.rand(4, 1, 16, 16)).abs().mean().backward()
        optimizer.step()
    export_qat_tflite(graph, torch.rand(1, 1, 12, 12), str(tmp_path / 'sesr.tflite'), {'arch': 'SESRInference'})
    ops = operator_types(str(tmp_path / 'sesr.tflite'))
    convs = [op for op in ops if op.op in ('CONV_2D', 'DEPTHWISE_CONV_2D')]  # 1 input channel: depthwise
    assert len(convs) == 5 and all(op.inputs == ('INT8', 'INT8', 'INT32') and op.outputs == ('INT8',) for op in convs)
    assert [op.op for op in ops[-2:]] == ['DEQUANTIZE', 'RELU_0_TO_1']  # the final clamp is left in float


@pytest.mark.slow
def test_qat_starts_from_a_raw_deploy_form_checkpoint_rescaled_for_int8(tmp_path):
    """A raw ETDSForInference state_dict (as the ETDS authors release) fine-tuned with QAT from its first step."""
    from conftest import perturb

    args = {'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_block': 1, 'num_feat': 8}
    raw = perturb(build_deployable('ETDSForInference', args).net, 0.05)
    torch.save(raw.state_dict(), tmp_path / 'raw.pth')
    data = write_edsr_pairs(tmp_path / 'data', 2, [(32, 32), (40, 36)])
    opt = training_opt(data, name='qat_raw', total_iter=2, qat={'start_iter': 0})
    opt['model_type'] = 'IRModel'
    opt['network_g'] = {'type': 'ETDSForInference', **args}
    opt['path']['pretrain_network_g'] = str(tmp_path / 'raw.pth')
    opt['train'] = {k: v for k, v in opt['train'].items() if k not in ('fixed_residual_model_iters',
                                                                        'interpolation_loss_weight')}
    experiment = train_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / 'qat.yml', opt)])
    log = next((tmp_path / 'experiments' / 'qat_raw').glob('train_*.log')).read_text()
    assert 'QAT: 3 of 3 conv pairs rescaled for int8 (fp32 unchanged)' in log  # random clip: not a unit one
    _, meta = load_checkpoint(f'{experiment}/models/net_g_latest.pth')
    assert meta['arch'] == 'ETDSForInference' and meta['args'] == args and meta['qat']['start_iter'] == 0
    model = load_deploy_model(f'{experiment}/models/net_g_latest.pth')  # rebuilds: rescaling kept every shape
    assert model.qat_graph is not None


@pytest.mark.slow
def test_qat_from_the_first_step_keeps_the_schedule_without_basicsr_warning(tmp_path):
    import warnings

    data = write_edsr_pairs(tmp_path / 'data', 2, [(32, 32), (40, 36)])
    opt = training_opt(data, name='qat_first', total_iter=3, qat={'start_iter': 0})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        experiment = train_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / 'qat.yml', opt)])
    # new optimizers under copied schedulers made torch warn that optimizer.step() was overridden
    assert not [str(w.message) for w in caught if 'lr_scheduler' in str(w.message) or 'overridden' in str(w.message)]
    state = torch.load(f'{experiment}/training_states/3.state', weights_only=True)
    assert state['optimizers'][0]['param_groups'][0]['lr'] == 5e-4  # the schedule's place and rate carried over
    assert state['schedulers'][0]['last_epoch'] == 2  # basicsr steps the schedulers from iteration 2 on
