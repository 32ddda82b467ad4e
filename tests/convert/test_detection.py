"""Raw checkpoints (official state_dicts, no meta) are recognised by their keys and shapes, in one declared order."""

from __future__ import annotations

import pytest
from basicsr.archs import build_network

from core.archs.detection import DETECTION_ORDER, RAW_LAYOUTS, detect_architecture, ordered_archs, raw_layout
from core.errors import UserError


def etds(**changes) -> dict:
    return dict(num_in_ch=3, num_out_ch=3, upscale=3, num_block=2, num_feat=12, num_residual_feat=4) | changes


def ecbsr(scale: int, act: str = 'prelu', num_feat: int = 16) -> dict:
    return dict(num_in_ch=3, num_out_ch=3, upscale=scale, num_block=4, num_feat=num_feat, act_type=act)


RAW = [  # every family's raw layout: the architecture and the arguments its weights must give back
    ('ETDS', etds()),
    ('ETDSAblationResidual', etds()),  # no cross connections
    ('ETDSAblationAdvancedResidual', etds()),  # every ETDS key, plus its own
    ('ECBSR_mobilesr', ecbsr(4)),
    ('ECBSR_mobilesr', ecbsr(3, 'relu', 32)),
    ('ECBSRT', ecbsr(2)),
    ('ECBSRET', dict(num_in_ch=3, num_out_ch=3, upscale=3, num_block=4, num_feat=16)),
    ('ECBSRET', dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=3, num_feat=16, act_type='relu')),
    ('ABPN', dict(num_feat=28, num_block=4, scale=4)),
    ('ABPN_ET', dict(num_feat=28, num_block=4, scale=3)),
    ('SESR', dict(num_in_ch=3, num_out_ch=3, upscale=2, m=5, int_features=16, feature_size=64, relu_act=True)),
    ('SESRInference', dict(num_in_ch=1, num_out_ch=1, upscale=4, m=3, int_features=8, relu_act=True)),
    ('ESPCN', dict(colors=3, upscale=3)),
    ('VDSR', dict(widths=[8, 6, 7], num_channels=1)),
]


@pytest.mark.parametrize(('arch', 'args'), RAW, ids=[f'{arch}-{i}' for i, (arch, _) in enumerate(RAW)])
def test_raw_checkpoints_are_recognised(arch, args):
    assert detect_architecture(build_network({'type': arch, **args}).state_dict()) == (arch, args)


def test_every_declared_layout_has_one_place_in_the_order():
    assert sorted(ordered_archs()) == sorted(RAW_LAYOUTS)
    assert len(ordered_archs()) == len(set(ordered_archs()))


def test_a_layout_outside_the_order_is_refused_where_it_is_declared():
    with pytest.raises(KeyError, match='DETECTION_ORDER'):
        raw_layout('MyNet', required=('conv.weight',))


def test_a_layout_is_tried_before_any_whose_keys_it_contains():
    order = ordered_archs()
    state = build_network({'type': 'ETDSAblationAdvancedResidual', **etds()}).state_dict()
    assert RAW_LAYOUTS['ETDS'].matches(state)  # so only the order makes the answer right
    assert order.index('ETDSAblationAdvancedResidual') < order.index('ETDS')
    assert order.index('ECBSRET') < order.index('ECBSRT') and order.index('ABPN_ET') < order.index('ABPN')


@pytest.mark.parametrize('arch', ['Plain', 'ETDSOnlyET'])
def test_plain_and_etds_only_et_are_not_guessed(arch):
    args = dict(num_in_ch=3, num_out_ch=3, upscale=2, num_block=2, num_feat=8)
    if arch == 'ETDSOnlyET':
        args |= dict(num_feat=11, num_residual_feat=3)
    assert ('Plain', 'ETDSOnlyET') in DETECTION_ORDER
    with pytest.raises(UserError, match='fits Plain and ETDSOnlyET alike .* pass --arch Plain .* or -opt'):
        detect_architecture(build_network({'type': arch, **args}).state_dict())
