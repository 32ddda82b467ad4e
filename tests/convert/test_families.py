"""ECBSR, ABPN and the baselines: official key layouts, collapsed ECB training, exact conversions, detection."""


import pytest
import torch
from basicsr.archs import build_network
from torch.nn import functional as F

from conftest import load_by_meta, perturb, run_repo_script
from core.archs.abpn_arch import ABPN, ABPN_ET
from core.archs.baselines_arch import ESPCN, FSRCNN, Plain
from core.archs.ecbsr_arch import ECB, ECBSR, ECBSRET, ECBSRT
from core.convert import convert_checkpoint, convert_network, get_converter, verify
from core.errors import UserError
from core.io.checkpoint import load_checkpoint


def shapes(net):
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def perturbed(net, amount=0.05, seed=0):
    return perturb(net, amount, seed)


def ecbsr_args(scale, act='prelu', num_feat=16):
    return dict(num_in_ch=3, num_out_ch=3, upscale=scale, num_block=4, num_feat=num_feat, act_type=act)


# --- official key layouts -------------------------------------------------------------------------------------------

def test_ecb_keys():
    keys = set(ECB(3, 16, 2.0, 'prelu').state_dict())
    expected = {'conv3x3.weight', 'conv3x3.bias', 'conv1x1_3x3.k0', 'conv1x1_3x3.b0', 'conv1x1_3x3.k1',
                'conv1x1_3x3.b1', 'act.weight'}
    for edge in ('sbx', 'sby', 'lpl'):
        expected |= {f'conv1x1_{edge}.{k}' for k in ('k0', 'b0', 'scale', 'bias', 'mask')}
    assert keys == expected
    assert shapes(ECB(3, 16, 2.0, 'prelu'))['conv1x1_3x3.k0'] == (32, 3, 1, 1)
    assert 'act.weight' not in ECB(3, 16, 2.0, 'relu').state_dict()


def test_ecbsrt_and_ecbsret_official_shapes():
    t = shapes(ECBSRT(**ecbsr_args(4)))
    assert t['backbone.0.0.weight'] == (16, 3, 3, 3) and t['backbone.0.1.weight'] == (16,)
    assert all(t[f'backbone.{k}.0.weight'] == (16, 16, 3, 3) for k in range(1, 5))
    assert t['backbone.5.0.weight'] == (48, 16, 3, 3) and 'backbone.5.1.weight' not in t
    et = shapes(ECBSRET(3, 3, 3, 4, 16))
    assert et['backbone.0.0.weight'] == (20, 3, 3, 3) and et['backbone.0.1.weight'] == (20,)
    assert all(et[f'backbone.{k}.0.weight'] == (20, 20, 3, 3) and et[f'backbone.{k}.1.weight'] == (20,)
               for k in range(1, 5))
    assert et['backbone.5.0.weight'] == (28, 20, 3, 3) and et['backbone.6.0.weight'] == (28, 28, 1, 1)


@pytest.mark.parametrize(('scale', 'tail', 'last'), [(4, 52, 48), (3, 30, 28), (2, 16, 12)])
def test_abpn_official_shapes(scale, tail, last):
    a = shapes(ABPN(28, 4, scale))
    assert a['backbone.0.weight'] == (28, 3, 3, 3) and a['backbone.5.0.weight'] == (28, 28, 3, 3)
    assert a['backbone.6.weight'] == (3 * scale**2, 28, 3, 3) and a['backbone.8.weight'] == (3 * scale**2,) * 2 + (3, 3)
    et = shapes(ABPN_ET(28, 4, scale))
    assert et['backbone.0.weight'] == (32, 3, 3, 3) and et['backbone.2.0.weight'] == (32, 32, 3, 3)
    assert et['backbone.6.weight'] == (tail, 32, 3, 3) and et['backbone.8.weight'] == (last, tail, 3, 3)
    assert et['backbone.10.weight'] == (last, last, 1, 1)


def test_baseline_layouts_and_output_sizes():
    assert set(ESPCN(3, 3).state_dict()) == {f'conv{i}.{p}' for i in (1, 2, 3) for p in ('weight', 'bias')}
    assert shapes(ESPCN(3, 3))['conv1.weight'] == (64, 3, 5, 5)
    fsrcnn = shapes(FSRCNN(4))
    assert fsrcnn['first_part.0.weight'] == (56, 3, 5, 5) and fsrcnn['mid_part.11.weight'] == (56,)
    assert fsrcnn['last_part.weight'] == (56, 3, 9, 9)
    plain = shapes(Plain(3, 3, 2, 6, 32))
    assert plain['backbone_convs.5.weight'] == (32, 32, 3, 3) and plain['conv_last.weight'] == (12, 32, 3, 3)
    x = torch.rand(1, 3, 7, 9)
    for scale in (2, 3, 4):
        for net in (ESPCN(3, scale), FSRCNN(scale), Plain(3, 3, scale, 2, 8)):
            assert net(x).shape == (1, 3, 7 * scale, 9 * scale)
    assert 0 < ESPCN(3, 2)(x).min() and ESPCN(3, 2)(x).max() < 1  # sigmoid output


# --- collapsed ECB training -----------------------------------------------------------------------------------------

def set_collapsed(net, value):
    for module in net.modules():
        if isinstance(module, ECB):
            module.collapsed = value


@pytest.mark.parametrize('act', ['prelu', 'relu'])
def test_collapsed_forward_matches_branches_including_borders(act):
    net = perturbed(ECBSR(**ecbsr_args(4, act)), amount=0.05)
    x = torch.rand(2, 3, 16, 12)  # small images: a large share of pixels touch a border
    branches = net(x)
    set_collapsed(net, True)
    assert (net(x) - branches).abs().max().item() <= 1e-5


def test_collapsed_training_gives_every_branch_parameter_the_branch_gradient():
    net = perturbed(ECBSR(**ecbsr_args(2))).double().train()
    x, gt = torch.rand(2, 3, 10, 10, dtype=torch.float64), torch.rand(2, 3, 20, 20, dtype=torch.float64)
    grads = {}
    for collapsed in (False, True):
        set_collapsed(net, collapsed)
        net.zero_grad()
        F.l1_loss(net(x), gt).backward()
        grads[collapsed] = {n: p.grad.clone() for n, p in net.named_parameters() if p.requires_grad}
    assert set(grads[True]) == {n for n, p in net.named_parameters() if not n.endswith('.mask')}
    for name, grad in grads[False].items():
        torch.testing.assert_close(grads[True][name], grad, rtol=1e-9, atol=1e-12, msg=name)
    nonzero = [n for n, g in grads[True].items() if g.abs().sum() > 0]
    # only the 1×1 biases before Sobel/Laplacian masks get no gradient: those masks sum to zero
    assert sorted(set(grads[True]) - set(nonzero)) == sorted(
        f'backbone.{b}.conv1x1_{e}.b0' for b in range(6) for e in ('sbx', 'sby', 'lpl'))
    assert all(net.get_parameter(n).grad is None for n, p in net.named_parameters() if n.endswith('.mask'))


def test_unknown_act_type_is_a_user_error():
    with pytest.raises(UserError, match="unknown act_type 'gelu'"):
        ECB(3, 4, 2.0, 'gelu')


# --- exact conversions ----------------------------------------------------------------------------------------------

def test_softplus_cannot_be_carried():
    net = ECBSR(**ecbsr_args(2, 'softplus', 8)).eval()
    with pytest.raises(UserError, match='--to plain'):
        convert_network(net, 'ECBSR_mobilesr', 'et')
    assert convert_network(net, 'ECBSR_mobilesr', 'plain')[0] == 'ECBSRT'


def test_reconverting_ecbsrt_and_abpn_checkpoints_gives_the_input_model_clamped(tmp_path):
    for arch, args in (('ECBSRT', ecbsr_args(3)), ('ABPN', dict(num_feat=28, num_block=4, scale=3))):
        net = perturbed(build_network({'type': arch, **args}), amount=0.1)
        torch.save(net.state_dict(), tmp_path / f'{arch}.pth')  # the official raw layout
        report = convert_checkpoint(str(tmp_path / f'{arch}.pth'), str(tmp_path / f'{arch}_et.pth'))
        assert report.source_arch == arch and report.max_abs_diff <= 1e-6
        et = load_by_meta(tmp_path / f'{arch}_et.pth')
        x = torch.rand(1, 3, 12, 10)
        with torch.no_grad():
            torch.testing.assert_close(et(x), net(x).clamp(0, 1), rtol=0, atol=1e-5)


# --- detection and the CLI ------------------------------------------------------------------------------------------

def test_verify_catches_a_wrong_carry():
    net = perturbed(ABPN(8, 2, 2))
    _, _, et = convert_network(net, 'ABPN', 'et')
    reference = get_converter('ABPN', 'et').reference
    assert verify(net, et, reference, 3) <= 1e-6
    with torch.no_grad():
        et.backbone[0].weight[8, 0, 1, 1] = 0.5  # break the identity that carries the red channel
    assert verify(net, et, reference, 3) > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize(('net', 'message'), [
    (ESPCN(3, 2), "'ESPCN' has no converter"),
    (ECBSRET(3, 3, 2, 1, 8), "'ECBSRET' is already a deployable form"),
])
def test_cli_refuses_unconvertible_checkpoints_in_one_line(tmp_path, net, message):
    torch.save(net.state_dict(), tmp_path / 'in.pth')
    result = run_repo_script('converter.py', '--input', 'in.pth', '--output', 'out.pth', cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count('\n') == 1 and message in result.stderr
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.slow
def test_cli_to_plain_and_et(tmp_path):
    torch.save(perturbed(ECBSR(**ecbsr_args(2, num_feat=8))).state_dict(), tmp_path / 'ecbsr.pth')
    for kind, target in (('plain', 'ECBSRT'), ('et', 'ECBSRET')):
        result = run_repo_script('converter.py', '--input', 'ecbsr.pth', '--output', f'{kind}.pth', '--to', kind,
                                 cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f'ECBSR_mobilesr -> {target}' in result.stdout
        assert load_checkpoint(str(tmp_path / f'{kind}.pth'))[1]['arch'] == target
