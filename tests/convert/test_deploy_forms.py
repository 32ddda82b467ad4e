"""The one mechanism: networks record their arguments, fold themselves, and declare how raw files are recognised."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from conftest import REPO, perturb
from core.archs.network import SRNetwork
from core.convert import convert_network
from core.errors import UserError

# Small examples of the source architectures the tests below fold.
SOURCES = {
    'ETDS': dict(num_in_ch=3, num_out_ch=3, upscale=3, num_block=2, num_feat=12, num_residual_feat=4),
    'ETDSAblationResidual': dict(num_in_ch=3, num_out_ch=3, upscale=2, num_block=2, num_feat=12, num_residual_feat=4),
    'ETDSAblationAdvancedResidual': dict(num_in_ch=1, num_out_ch=1, upscale=4, num_block=2, num_feat=10,
                                         num_residual_feat=3),
    'ETDSOnlyET': dict(num_in_ch=3, num_out_ch=3, upscale=3, num_block=3, num_feat=13, num_residual_feat=3),
    'ECBSR_mobilesr': dict(num_in_ch=3, num_out_ch=3, upscale=2, num_block=2, num_feat=8, act_type='prelu',
                           with_idt=True),
    'ECBSRT': dict(num_in_ch=1, num_out_ch=1, upscale=3, num_block=2, num_feat=6, act_type='relu'),
    'ABPN': dict(num_feat=9, num_block=2, scale=3),
    'SESR': dict(num_in_ch=3, num_out_ch=3, upscale=4, m=2, int_features=8, feature_size=16,
                 two_step_shuffle=True),
}


def network_classes() -> dict[str, type]:
    return {name: obj for name, obj in ARCH_REGISTRY if getattr(obj, '__module__', '').startswith('core.')}


def test_every_network_records_its_arguments_and_rebuilds_from_them():
    configs = sorted((REPO / 'configs' / 'train').glob('*.yml'))
    assert len(configs) > 40
    for config in configs:
        network = yaml.safe_load(config.read_text())['network_g']
        net = build_network(dict(network))
        given = {k: v for k, v in network.items() if k != 'type'}
        if network['type'] == 'EdgeSR':  # a builder function: the variant it returns records its own arguments
            assert net.init_args['upscale'] == int(given['model_id'].split('_s')[1][0])
            continue
        assert given.items() <= net.init_args.items(), config.name
        rebuilt = build_network({'type': network['type'], **net.init_args})
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
            k: v.shape for k, v in net.state_dict().items()}, config.name


def test_every_registered_class_is_an_sr_network():
    classes = {name: obj for name, obj in network_classes().items() if isinstance(obj, type)}
    assert len(classes) >= 20
    assert all(issubclass(obj, SRNetwork) for obj in classes.values()), [
        name for name, obj in classes.items() if not issubclass(obj, SRNetwork)]


def test_each_class_that_declares_a_fold_implements_it():
    for name, cls in network_classes().items():
        if isinstance(cls, type) and cls.deploy_forms:
            assert cls.to_deploy is not SRNetwork.to_deploy, name


def test_etds_only_et_carries_the_input_in_the_channels_above_its_backbone():
    net = build_network({'type': 'ETDSOnlyET', **SOURCES['ETDSOnlyET']})
    _, args, plain = convert_network(net, 'ETDSOnlyET')
    assert (args['num_feat'], args['num_residual_feat']) == (16, 6)  # C_b = 10, + 3 carried, rounded up to 16
    assert plain.conv_first.out_channels == 16 and len(plain.backbone_convs) == 3


# --- ECBSRET takes the upstream act_type ---------------------------------------------------------------------------

@pytest.mark.parametrize('act_type', ['prelu', 'relu', 'rrelu', 'linear'])
def test_ecbsret_accepts_the_upstream_act_type(act_type):
    args = dict(num_in_ch=3, num_out_ch=3, upscale=2, num_block=2, num_feat=12, act_type=act_type)
    net = build_network({'type': 'ECBSRET', **args})
    assert net.init_args == args
    assert sum(k.endswith('.1.weight') for k in net.state_dict()) == (3 if act_type == 'prelu' else 0)


def test_ecbsret_refuses_an_activation_that_would_change_the_carried_image():
    with pytest.raises(UserError, match=r"act_type must leave x >= 0 unchanged .* not 'softplus'") as error:
        build_network({'type': 'ECBSRET', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_block': 1,
                       'num_feat': 8, 'act_type': 'softplus'})
    assert '\n' not in str(error.value)


def test_a_raw_plain_loads_once_its_yaml_says_which(tmp_path: Path):
    from core.convert import load_network

    args = dict(num_in_ch=3, num_out_ch=3, upscale=2, num_block=2, num_feat=8)
    torch.save(build_network({'type': 'Plain', **args}).state_dict(), tmp_path / 'plain.pth')
    (tmp_path / 'plain.yml').write_text(yaml.safe_dump({'network_g': {'type': 'Plain', **args}}))
    arch, found, _ = load_network(str(tmp_path / 'plain.pth'), str(tmp_path / 'plain.yml'))
    assert (arch, found) == ('Plain', args)


def test_a_raw_etds_for_inference_describes_itself(tmp_path: Path):
    from core.convert import load_network

    args = dict(num_in_ch=3, num_out_ch=3, upscale=3, num_block=2, num_feat=12, num_residual_feat=3)
    net = perturb(build_network({'type': 'ETDSForInference', **args}), 0.05)
    torch.save(net.state_dict(), tmp_path / 'raw.pth')
    arch, found, loaded = load_network(str(tmp_path / 'raw.pth'))  # no YAML: num_residual_feat changes nothing
    assert (arch, found) == ('ETDSForInference', {k: v for k, v in args.items() if k != 'num_residual_feat'})
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


@pytest.mark.parametrize('arch', ['Plain', 'ETDSOnlyET'])
def test_arch_names_the_network_of_an_ambiguous_raw_file(arch, tmp_path: Path):
    from core.convert import load_network

    args = dict(num_in_ch=3, num_out_ch=3, upscale=2, num_block=2, num_feat=8)
    if arch == 'ETDSOnlyET':
        args |= dict(num_feat=11, num_residual_feat=3)
    net = perturb(build_network({'type': arch, **args}), 0.05)
    torch.save(net.state_dict(), tmp_path / 'raw.pth')
    found, found_args, loaded = load_network(str(tmp_path / 'raw.pth'), arch=arch)
    assert (found, found_args) == (arch, args)
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_an_arch_the_weights_do_not_fit_is_refused(tmp_path: Path):
    from core.convert import load_network

    torch.save(build_network({'type': 'Plain', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_block': 1,
                              'num_feat': 8}).state_dict(), tmp_path / 'raw.pth')
    with pytest.raises(UserError, match="--arch ECBSRT: the weights do not have ECBSRT's keys and shapes"):
        load_network(str(tmp_path / 'raw.pth'), arch='ECBSRT')
    with pytest.raises(UserError, match="--arch Nope: no raw layout is known for 'Nope'"):
        load_network(str(tmp_path / 'raw.pth'), arch='Nope')


# Deploy forms at scales whose output width is a multiple of 4 (no channel to drop), and the ops they may hold.
CLEAN_GRAPHS = {
    'ETDSForInference': dict(num_in_ch=3, num_out_ch=3, upscale=2, num_block=2, num_feat=8),
    'ECBSRET': dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=2, num_feat=8),
    'ABPN_ET': dict(num_feat=8, num_block=2, scale=2),
    'Plain': dict(num_in_ch=3, num_out_ch=3, upscale=2, num_block=2, num_feat=8),
    'ESPCN': dict(colors=3, upscale=2),
    'FSRCNN': dict(upscale=2),
    'SESRInference': dict(num_in_ch=1, num_out_ch=1, upscale=2, m=2, int_features=8),
}
DEPLOY_OPS = {'conv2d', 'conv_transpose2d', 'relu', 'prelu', 'tanh', 'sigmoid', 'add', 'clamp', 'pixel_shuffle'}


def _exported_ops(arch: str, args: dict) -> list[str]:
    net = build_network({'type': arch, **args}).eval()
    channels = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
    program = torch.export.export(net, (torch.rand(1, channels, 16, 16),))
    return [node.target.__name__.split('.')[0] for node in program.graph.nodes if node.op == 'call_function']


@pytest.mark.parametrize('arch', sorted(CLEAN_GRAPHS))
def test_exported_deploy_graphs_hold_only_conv_activation_add_clamp_and_depth_to_space(arch):
    allowed = DEPLOY_OPS | ({'cat'} if arch == 'SESRInference' else set())  # its input residual, s² copies
    ops = _exported_ops(arch, CLEAN_GRAPHS[arch])
    assert set(ops) <= allowed, sorted(set(ops) - allowed)  # no alias or no-op slice to split a delegate


def test_a_padded_output_width_is_sliced_once():
    ops = _exported_ops('ECBSRET', dict(num_in_ch=3, num_out_ch=3, upscale=3, num_block=1, num_feat=8))  # 27 of 28
    assert ops.count('slice') == 1 and 'alias' not in ops
