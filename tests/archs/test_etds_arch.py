"""ETDS architectures: the official key layout, the nearest-neighbour init, and argument checks."""

import pytest
import torch
from torch.nn import functional as F

from core.archs.etds_arch import (
    ETDS,
    ETDSAblationAdvancedResidual,
    ETDSAblationResidual,
    ETDSForInference,
    ETDSOnlyET,
)
from core.archs.shared import plain_last_width
from core.errors import UserError


def shapes(net):
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def test_etds_m4c32_x4_has_the_official_keys_and_shapes():
    expected = {
        'conv_first.weight': (29, 3, 3, 3), 'conv_first.bias': (29,),
        'conv_residual_first.weight': (3, 3, 3, 3), 'conv_residual_first.bias': (3,),
        'conv_last.weight': (48, 29, 3, 3), 'conv_last.bias': (48,),
        'conv_residual_last.weight': (48, 3, 3, 3), 'conv_residual_last.bias': (48,),
    }
    for i in range(4):
        expected |= {f'backbone_convs.{i}.weight': (29, 29, 3, 3), f'backbone_convs.{i}.bias': (29,),
                     f'residual_convs.{i}.weight': (3, 3, 3, 3), f'residual_convs.{i}.bias': (3,),
                     f'add_residual_convs.{i}.weight': (29, 3, 3, 3), f'add_residual_convs.{i}.bias': (29,)}
    assert shapes(ETDS(3, 3, 4, 4, 32, 3)) == expected


@pytest.mark.parametrize(('scale', 'width'), [(2, 12), (3, 28), (4, 48)])
def test_inference_form_keys_pad_x3_to_a_multiple_of_four(scale, width):
    got = shapes(ETDSForInference(3, 3, scale, 4, 32, 3))
    assert got['conv_first.weight'] == (32, 3, 3, 3)
    assert got['backbone_convs.3.weight'] == (32, 32, 3, 3)
    assert got['conv_last.weight'] == (width, 32, 3, 3)
    assert got['conv_clip.weight'] == (width, width, 1, 1)
    assert plain_last_width(3, scale) == width
    assert len(got) == 2 * (4 + 3)


@pytest.mark.parametrize('cls', [ETDS, ETDSAblationResidual, ETDSAblationAdvancedResidual])
@pytest.mark.parametrize('scale', [2, 3, 4])
def test_residual_stream_starts_as_nearest_neighbour_upsampling(cls, scale):
    torch.manual_seed(scale)
    net = cls(3, 3, scale, 2, 16, 4)
    x = torch.rand(2, 3, 11, 9)
    out, residual = net(x)
    assert out.shape == residual.shape == (2, 3, 11 * scale, 9 * scale)
    torch.testing.assert_close(residual, F.interpolate(x, scale_factor=scale, mode='nearest'), rtol=0, atol=1e-6)


def test_ablation_layouts():
    assert not any(k.startswith('add_residual_convs') for k in ETDSAblationResidual(3, 3, 2, 2, 16, 3).state_dict())
    advanced = ETDSAblationAdvancedResidual(3, 3, 2, 2, 16, 3)
    assert shapes(advanced)['advanced_residual_convs.1.weight'] == (3, 13, 3, 3)
    assert all(torch.count_nonzero(p) == 0 for n, p in advanced.named_parameters() if 'advanced_residual' in n)


def test_only_et_adds_the_repeated_input_before_pixel_shuffle():
    net = ETDSOnlyET(3, 3, 3, 2, 16, 3)
    assert shapes(net)['conv_first.weight'] == (13, 3, 3, 3)
    with torch.no_grad():
        net.conv_last.weight.zero_()
        net.conv_last.bias.zero_()
    x = torch.rand(1, 3, 5, 6)
    torch.testing.assert_close(net(x), F.interpolate(x, scale_factor=3, mode='nearest'), rtol=0, atol=0)


def test_residual_stream_parameters_are_kr_and_kr2b():
    net = ETDS(3, 3, 2, 2, 16, 3)
    ids = {id(p) for p in net.residual_stream_parameters()}
    names = {n for n, p in net.named_parameters() if id(p) in ids}
    assert names == {n for n, _ in net.named_parameters()
                     if n.split('.')[0] in ('conv_residual_first', 'residual_convs', 'add_residual_convs',
                                            'conv_residual_last')}


@pytest.mark.parametrize('args', [(3, 3, 4, 4, 32, 2), (3, 3, 4, 4, 3, 3), (3, 3, 0, 4, 32, 3)])
def test_bad_sizes_are_user_errors(args):
    with pytest.raises(UserError, match='ETDS needs'):
        ETDS(*args)
