"""The ETDS converter: exact on perturbed weights at every scale, safe with files, and a thin CLI."""

import hashlib

import pytest
import torch

from conftest import perturb, run_repo_script, write_yaml
from core.archs.etds_arch import ETDS, ETDSForInference
from core.convert import convert_checkpoint, convert_network, get_converter, verify
from core.errors import UserError
from core.io.checkpoint import load_checkpoint

DUAL = ['ETDS', 'ETDSAblationResidual', 'ETDSAblationAdvancedResidual']


def perturbed(arch: str, scale: int, seed: int = 0, num_block: int = 4, num_feat: int = 32) -> torch.nn.Module:
    """Official-size network whose every weight, residual stream included, has left its init."""
    from basicsr.archs import build_network

    net = build_network({'type': arch, 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': scale, 'num_block': num_block,
                         'num_feat': num_feat, 'num_residual_feat': 3})
    return perturb(net, 0.05, seed)


def test_verify_detects_a_wrong_fold():
    net = perturbed('ETDS', 2)
    _, _, plain = convert_network(net, 'ETDS')
    reference = get_converter('ETDS', 'plain').reference
    assert verify(net, plain, reference, 3) <= 1e-6
    with torch.no_grad():
        plain.backbone_convs[0].weight[0, 30, 1, 1] += 0.5  # a residual→backbone tap
    assert verify(net, plain, reference, 3) > 1e-3


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_raw_official_checkpoint_is_detected_converted_and_described(tmp_path):
    net = perturbed('ETDS', 3)
    src = tmp_path / 'ETDS_M4C32_x3.pth'
    torch.save(net.state_dict(), src)
    before = sha(src)
    report = convert_checkpoint(str(src), str(tmp_path / 'plain.pth'))
    assert sha(src) == before
    assert report.source_arch == 'ETDS' and report.max_abs_diff <= 1e-6
    state, meta = load_checkpoint(str(tmp_path / 'plain.pth'))
    assert meta['arch'] == 'ETDSForInference' and meta['args']['upscale'] == 3
    assert meta['converted_from']['arch'] == 'ETDS' and meta['converted_from']['file'] == src.name
    plain = ETDSForInference(**meta['args'])
    plain.load_state_dict(state, strict=True)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), net(x)[0].clamp(0, 1), rtol=0, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ETDS_M4C32_x3.pth', 'plain.pth']


def test_basicsr_checkpoint_uses_ema_unless_told_otherwise(tmp_path):
    ema, params = perturbed('ETDS', 2, seed=1), perturbed('ETDS', 2, seed=2)
    src = tmp_path / 'net_g_latest.pth'
    torch.save({'params': params.state_dict(), 'params_ema': ema.state_dict()}, src)
    x = torch.rand(1, 3, 8, 8)
    for key, net in ((None, ema), ('params', params)):
        out = tmp_path / f'{key}.pth'
        convert_checkpoint(str(src), str(out), param_key=key)
        plain = ETDSForInference(3, 3, 2, 4, 32, 3)
        plain.load_state_dict(load_checkpoint(str(out))[0])
        with torch.no_grad():
            torch.testing.assert_close(plain(x), net(x)[0].clamp(0, 1), rtol=0, atol=1e-5)


def test_refuses_to_overwrite_its_input(tmp_path):
    src = tmp_path / 'a.pth'
    torch.save(perturbed('ETDS', 2).state_dict(), src)
    before = sha(src)
    with pytest.raises(UserError, match='is the input file'):
        convert_checkpoint(str(src), str(src))
    assert sha(src) == before


def test_inexact_result_is_refused_and_nothing_is_written(tmp_path):
    src = tmp_path / 'a.pth'
    torch.save(perturbed('ETDS', 2).state_dict(), src)
    with pytest.raises(UserError, match='not exact'):
        convert_checkpoint(str(src), str(tmp_path / 'b.pth'), tolerance=0.0)
    assert [p.name for p in tmp_path.iterdir()] == ['a.pth']


def test_unknown_layout_asks_for_the_yaml_and_the_yaml_resolves_it(tmp_path):
    net = ETDS(3, 3, 2, 1, 8, 3)
    state = net.state_dict()
    state['conv_last.weight'] = state['conv_last.weight'][:11]  # 11 = 3·s² has no integer s: undetectable
    state['conv_last.bias'] = state['conv_last.bias'][:11]
    torch.save(state, tmp_path / 'odd.pth')
    with pytest.raises(UserError, match='-opt'):
        convert_checkpoint(str(tmp_path / 'odd.pth'), str(tmp_path / 'out.pth'))
    torch.save(net.state_dict(), tmp_path / 'ok.pth')
    opt = write_yaml(tmp_path / 'train.yml', {'network_g': {'type': 'ETDS', 'num_in_ch': 3, 'num_out_ch': 3,
                                                            'upscale': 2, 'num_block': 1, 'num_feat': 8,
                                                            'num_residual_feat': 3}})
    assert convert_checkpoint(str(tmp_path / 'ok.pth'), str(tmp_path / 'out.pth'), opt_path=opt).max_abs_diff < 1e-6
    with pytest.raises(UserError, match="'conv_last.weight' has shape"):
        convert_checkpoint(str(tmp_path / 'odd.pth'), str(tmp_path / 'out2.pth'), opt_path=opt)


def run_converter(*args, cwd):
    return run_repo_script('converter.py', *args, cwd=cwd)


@pytest.mark.slow
def test_cli_converts_and_reports(tmp_path):
    torch.save(perturbed('ETDS', 4).state_dict(), tmp_path / 'in.pth')
    result = run_converter('--input', 'in.pth', '--output', 'out/plain.pth', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'ETDS -> ETDSForInference' in result.stdout
    diff = float(result.stdout.split('(float64): ')[1].split()[0])
    assert diff <= 1e-6
    assert (tmp_path / 'out' / 'plain.pth').is_file()


@pytest.mark.slow
@pytest.mark.parametrize('payload', ['not a checkpoint', 'pickle'])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, payload):
    src = tmp_path / 'in.pth'
    if payload == 'pickle':
        torch.save(ETDS(3, 3, 2, 1, 8, 3), src)  # a whole module: not loadable with weights_only
    else:
        src.write_text(payload)
    result = run_converter('--input', 'in.pth', '--output', 'out.pth', cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1 and result.stderr.startswith('error: ')
    assert 'weights-only' in result.stderr
    assert not (tmp_path / 'out.pth').exists()
