"""SESR: linear blocks collapse exactly (biases stay biases), collapsed = expanded training, exact converter,
and an x4 model really starts from a trained x2 one."""


import pytest
import torch
from basicsr.models import build_model
from torch import nn
from torch.nn import functional as F

from conftest import load_by_meta, perturb, run_repo_script, training_opt, write_edsr_pairs
from core.archs.etds_arch import ETDS
from core.archs.sesr_arch import SESR, LinearBlock, SESRInference
from core.convert import convert_network, get_converter, verify
from core.errors import UserError
from core.reparam import compose_kxk_1x1

D = torch.float64


def perturbed(net, amount=0.02, seed=0):
    return perturb(net, amount, seed)


def test_compose_kxk_1x1_is_the_two_convs():
    k1, b1 = torch.randn(7, 3, 5, 5, dtype=D), torch.randn(7, dtype=D)
    k2, b2 = torch.randn(4, 7, 1, 1, dtype=D), torch.randn(4, dtype=D)
    x = torch.randn(2, 3, 9, 8, dtype=D)
    weight, bias = compose_kxk_1x1((k1, b1), (k2, b2))
    expected = F.conv2d(F.conv2d(x, k1, b1, padding=2), k2, b2)
    torch.testing.assert_close(F.conv2d(x, weight, bias, padding=2), expected, rtol=0, atol=1e-12)


def test_biases_do_not_leak_into_kernel_taps():
    """With zero kernels a block outputs W2·b1 + b2 everywhere, borders included (the authors' code spreads it)."""
    block = LinearBlock(3, 4, 5, 8).double()
    with torch.no_grad():
        block.expand.weight.zero_()
        block.squeeze.weight.normal_()
    weight, bias = block.fold()
    assert torch.count_nonzero(weight) == 0
    out = block(torch.rand(1, 3, 6, 6, dtype=D))
    expected = block.squeeze.weight[:, :, 0, 0] @ block.expand.bias + block.squeeze.bias
    torch.testing.assert_close(out, expected.view(1, 4, 1, 1).expand_as(out), rtol=0, atol=1e-12)


@pytest.mark.parametrize('residual', [False, True])
def test_linear_block_collapsed_equals_expanded(residual):
    collapsed = LinearBlock(6, 6, 3, 32, residual=residual).double()
    expanded = LinearBlock(6, 6, 3, 32, residual=residual, block_type='expanded').double()
    expanded.load_state_dict(collapsed.state_dict())
    x = torch.randn(2, 6, 7, 5, dtype=D)
    torch.testing.assert_close(collapsed(x), expanded(x), rtol=0, atol=1e-12)


def test_sesr_collapsed_and_expanded_are_one_function_with_one_gradient():
    collapsed = perturbed(SESR(3, 3, 2, 3, 8, 32)).double().train()
    expanded = SESR(3, 3, 2, 3, 8, 32, linear_block_type='expanded').double().train()
    expanded.load_state_dict(collapsed.state_dict())
    x, gt = torch.rand(2, 3, 10, 9, dtype=D), torch.rand(2, 3, 20, 18, dtype=D)
    outputs = []
    for net in (collapsed, expanded):
        out = net(x)
        F.l1_loss(out, gt).backward()
        outputs.append(out)
    assert ((outputs[0] > 0) & (outputs[0] < 1)).float().mean() > 0.5
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-12)
    for (name, a), (_, b) in zip(collapsed.named_parameters(), expanded.named_parameters(), strict=True):
        assert a.grad is not None and a.grad.abs().sum() > 0, name
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12, msg=name)


def test_x4_training_starts_from_the_x2_weights(tmp_path):
    x2 = perturbed(SESR(3, 3, 2, 2, 8, 16), amount=0.5, seed=7)
    torch.save({'params': x2.state_dict()}, tmp_path / 'x2.pth')
    opt = training_opt(write_edsr_pairs(tmp_path / 'data', 4, [(40, 40), (44, 48)]), scale=4)
    opt['model_type'] = 'IRModel'
    opt['network_g'] = {'type': 'SESR', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 4, 'm': 2, 'int_features': 8,
                        'feature_size': 16}
    opt['path'].update(pretrain_network_g=str(tmp_path / 'x2.pth'), strict_load_g=False, param_key_g='params')
    opt['train']['ema_decay'] = 0
    opt |= {'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1}
    x4 = build_model(opt).net_g.state_dict()
    source = x2.state_dict()
    differing = sorted(k for k in x4 if x4[k].shape != source[k].shape)
    assert differing == ['last.squeeze.bias', 'last.squeeze.weight']
    for key in x4:
        if key not in differing:
            assert torch.equal(x4[key], source[key]), key
    fresh = SESR(3, 3, 4, 2, 8, 16).state_dict()
    assert not torch.equal(fresh['first.expand.weight'], source['first.expand.weight'])  # so equality means copied


@pytest.mark.parametrize('two_step_source', [False, True])
@pytest.mark.parametrize('two_step_target', [None, False, True])
def test_converter_moves_x4_between_one_and_two_pixel_shuffles_exactly(two_step_source, two_step_target):
    net = perturbed(SESR(1, 1, 4, 3, 8, 32, two_step_shuffle=two_step_source), seed=3)
    options = {} if two_step_target is None else {'two_step_shuffle': two_step_target}
    _, args, plain = convert_network(net, 'SESR', **options)
    expected_layout = two_step_source if two_step_target is None else two_step_target
    assert args['two_step_shuffle'] is expected_layout and plain.steps == ((2, 2) if expected_layout else (4,))
    assert verify(net, plain, get_converter('SESR').reference, 1) <= 1e-6
    if expected_layout != two_step_source:  # the same weights in the other layout are a different function
        relabelled = SESRInference(1, 1, 4, 3, 8, two_step_shuffle=two_step_source).double()
        relabelled.load_state_dict(plain.state_dict())
        assert verify(net, relabelled, get_converter('SESR').reference, 1) > 1e-3


def test_two_step_shuffle_needs_x4_and_other_families_take_no_options():
    with pytest.raises(UserError, match='needs upscale 4'):
        SESR(1, 1, 2, 1, 8, 16, two_step_shuffle=True)
    with pytest.raises(UserError, match=r"converting 'ETDS' to et takes no options, not two_step_shuffle"):
        convert_network(ETDS(3, 3, 4, 1, 8, 3), 'ETDS', two_step_shuffle=True)


def run_converter(*args, cwd):
    return run_repo_script('converter.py', *args, cwd=cwd)


@pytest.mark.slow
def test_cli_moves_x4_models_between_layouts_and_they_load_by_their_meta(tmp_path):
    net = perturbed(SESR(1, 1, 4, 2, 8, 16), seed=5).eval()
    torch.save({'params': net.state_dict()}, tmp_path / 'x4.pth')
    x = torch.rand(1, 1, 9, 11)
    result = run_converter('--input', 'x4.pth', '--output', 'ps2.pth', '--two-step-shuffle', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "'two_step_shuffle': True" in result.stdout
    two_step = load_by_meta(tmp_path / 'ps2.pth')
    assert two_step.steps == (2, 2)
    torch.testing.assert_close(two_step(x), net(x), rtol=0, atol=1e-5)

    result = run_converter('--input', 'ps2.pth', '--output', 'ps4.pth', '--no-two-step-shuffle', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    one_step = load_by_meta(tmp_path / 'ps4.pth')
    assert one_step.steps == (4,)
    torch.testing.assert_close(one_step(x), net(x), rtol=0, atol=1e-5)

    result = run_converter('--input', 'ps4.pth', '--output', 'again.pth', cwd=tmp_path)
    assert result.returncode == 2 and "only --two-step-shuffle or --no-two-step-shuffle" in result.stderr
    assert not (tmp_path / 'again.pth').exists()


@pytest.mark.parametrize('upscale, m, int_features, published', [
    (2, 5, 16, 13_520), (2, 11, 16, 27_344), (2, 11, 32, 105_376),
    (4, 5, 16, 18_320), (4, 11, 16, 32_144), (4, 11, 32, 114_976)])
def test_collapsed_sesr_has_the_published_size(upscale, m, int_features, published):
    """The paper counts conv weights of the collapsed net (13.52K for M5 x2, 105.37K for XL x2, ...)."""
    _, _, plain = convert_network(SESR(1, 1, upscale, m, int_features, 64), 'SESR')
    assert sum(c.weight.numel() for c in plain.modules() if isinstance(c, nn.Conv2d)) == published


def test_bad_block_type_is_a_user_error():
    with pytest.raises(UserError, match="unknown linear_block_type 'fast'"):
        SESR(3, 3, 2, 1, 8, 16, linear_block_type='fast')
