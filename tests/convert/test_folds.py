"""Every fold of every family, exact in float64 at x2, x3 and x4 on perturbed weights (one table for all)."""

from __future__ import annotations

import pytest
import torch
from basicsr.archs import build_network

from conftest import perturb
from core.archs.network import registered_name
from core.convert import convert_network, converters, get_converter


def etds(scale: int, **changes) -> dict:
    return dict(num_in_ch=3, num_out_ch=3, upscale=scale, num_block=2, num_feat=12, num_residual_feat=4) | changes


def ecbsr(scale: int, act: str = 'prelu', num_feat: int = 8, **changes) -> dict:
    return dict(num_in_ch=3, num_out_ch=3, upscale=scale, num_block=2, num_feat=num_feat, act_type=act) | changes


FOLDS = [  # source, kind, arguments at scale s, target, weight perturbation
    ('ETDS', 'plain', etds, 'ETDSForInference', 0.05),
    ('ETDS', 'et', lambda s: etds(s, num_block=4, num_feat=32, num_residual_feat=3), 'ETDSForInference', 0.05),
    ('ETDSAblationResidual', 'et', etds, 'ETDSForInference', 0.05),
    ('ETDSAblationResidual', 'plain', etds, 'ETDSForInference', 0.05),
    ('ETDSAblationAdvancedResidual', 'et', lambda s: etds(s, num_in_ch=1, num_out_ch=1, num_feat=10,
                                                          num_residual_feat=3), 'ETDSForInference', 0.05),
    ('ETDSAblationAdvancedResidual', 'plain', etds, 'ETDSForInference', 0.05),
    ('ETDSOnlyET', 'et', lambda s: etds(s, num_block=3, num_feat=13, num_residual_feat=3), 'ETDSForInference', 0.05),
    ('ECBSR_mobilesr', 'plain', ecbsr, 'ECBSRT', 0.05),
    ('ECBSR_mobilesr', 'et', ecbsr, 'ECBSRET', 0.05),
    ('ECBSR_mobilesr', 'et', lambda s: ecbsr(s, 'relu'), 'ECBSRET', 0.05),
    ('ECBSR_mobilesr', 'et', lambda s: ecbsr(s, 'linear'), 'ECBSRET', 0.05),
    ('ECBSR_mobilesr', 'et', lambda s: ecbsr(s, 'rrelu', with_idt=True), 'ECBSRET', 0.01),
    ('ECBSRT', 'et', lambda s: ecbsr(s, num_feat=16), 'ECBSRET', 0.05),
    ('ECBSRT', 'et', lambda s: ecbsr(s, 'relu', num_feat=6, num_in_ch=1, num_out_ch=1), 'ECBSRET', 0.05),
    ('ABPN', 'et', lambda s: dict(num_feat=28, num_block=4, scale=s), 'ABPN_ET', 0.05),
    ('ABPN', 'et', lambda s: dict(num_feat=9, num_block=2, scale=s), 'ABPN_ET', 0.05),
    ('SESR', 'plain', lambda s: dict(num_in_ch=3, num_out_ch=3, upscale=s, m=5, int_features=16, feature_size=64),
     'SESRInference', 0.05),
    ('SESR', 'plain', lambda s: dict(num_in_ch=3, num_out_ch=3, upscale=s, m=5, int_features=16, feature_size=64,
                                     relu_act=True), 'SESRInference', 0.05),
]


def test_every_declared_fold_is_in_the_table():
    assert {(source, kind) for source, kind, *_ in FOLDS} == set(converters())


@pytest.mark.parametrize('scale', [2, 3, 4])
@pytest.mark.parametrize(('source', 'kind', 'make_args', 'target', 'amount'), FOLDS,
                         ids=[f'{s}-{k}-{i}' for i, (s, k, *_) in enumerate(FOLDS)])
def test_every_fold_is_exact_in_float64(source, kind, make_args, target, amount, scale):
    net = perturb(build_network({'type': source, **make_args(scale)}), amount, seed=scale)
    converter = get_converter(source, kind)
    target_arch, target_args, folded = convert_network(net, source, kind)
    assert target_arch == target == converter.target == registered_name(type(folded))
    assert target_args == folded.init_args
    build_network({'type': target_arch, **target_args}).load_state_dict(folded.state_dict())  # args describe it
    x = torch.rand(2, net.init_args.get('num_in_ch', 3), 15, 13, dtype=torch.float64)
    with torch.no_grad():
        expected = converter.reference(net.double().eval(), x)
        actual = folded.double()(x)
    assert (actual - expected).abs().max().item() <= 1e-6
    if converter.reference.__name__ == 'clamped_output':  # the clamp must act, or it proves nothing
        assert ((expected == 0) | (expected == 1)).any() and ((expected > 0) & (expected < 1)).float().mean() > 0.3


def test_float32_difference_is_rounding_only():
    net = perturb(build_network({'type': 'ETDS', **etds(4, num_block=4, num_feat=32, num_residual_feat=3)}), 0.05)
    _, _, plain = convert_network(net, 'ETDS')
    x = torch.rand(2, 3, 24, 20)
    with torch.no_grad():
        assert (plain(x) - net(x)[0].clamp(0, 1)).abs().max().item() < 1e-5
