"""Per-channel rescaling: exact in float64 across ReLU, PReLU, nothing and a transposed consumer; the scale rules;
the network pass on every deployable family; and its refusal when a rescaling would change the fp32 output."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from torch.nn import functional as F

import core.deploy.equalization as equalization
from conftest import DEPLOYABLE, deployable, perturb, tiny_etds
from core.deploy.equalization import conv_pairs, equalize, is_unit_clip_conv, max_difference
from core.errors import UserError
from core.reparam.equalize import (
    cross_layer_scales,
    input_ranges,
    migration_scales,
    output_ranges,
    rescale_channels,
)


def _conv(out_ch: int, in_ch: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(out_ch, in_ch, k, k, generator=g, dtype=torch.float64),
            torch.randn(out_ch, generator=g, dtype=torch.float64))


def _scales(channels: int, seed: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.exp(3 * torch.randn(channels, generator=g, dtype=torch.float64))  # 1e-4 … 1e4: far from 1


ACTIVATIONS = {
    'relu': F.relu,
    'prelu': lambda z: F.prelu(z, torch.linspace(-0.5, 0.9, z.shape[1], dtype=z.dtype)),
    'identity': lambda z: z,
}


@pytest.mark.parametrize('activation', sorted(ACTIVATIONS))
def test_rescaling_is_exact_in_float64(activation):
    act = ACTIVATIONS[activation]
    producer, consumer = _conv(6, 3, 3, 0), _conv(5, 6, 3, 1)
    x = torch.rand(2, 3, 11, 9, dtype=torch.float64) * 4 - 2  # negative inputs too: PReLU's negative side runs
    new_producer, new_consumer = rescale_channels(producer, consumer, _scales(6))

    def run(p, c):
        return F.conv2d(act(F.conv2d(x, *p, padding=1)), *c, padding=1)

    expected = run(producer, consumer)
    assert (run(new_producer, new_consumer) - expected).abs().max() <= 1e-12 * expected.abs().max()
    assert not torch.allclose(new_producer[0], producer[0])  # it did rescale


def test_rescaling_into_a_transposed_consumer_is_exact():
    producer = _conv(6, 3, 3, 0)
    g = torch.Generator().manual_seed(2)
    consumer = (torch.randn(6, 3, 9, 9, generator=g, dtype=torch.float64), torch.randn(3, dtype=torch.float64))
    x = torch.rand(1, 3, 10, 12, dtype=torch.float64)

    def run(p, c):
        return F.conv_transpose2d(F.relu(F.conv2d(x, *p, padding=1)), *c, stride=2, padding=4, output_padding=1)

    rescaled = rescale_channels(producer, consumer, _scales(6), consumer_in_dim=0)
    assert (run(*rescaled) - run(producer, consumer)).abs().max() <= 1e-10


def test_rescaling_refuses_scales_that_do_not_commute_with_relu():
    producer, consumer = _conv(4, 3, 3, 0), _conv(2, 4, 3, 1)
    with pytest.raises(ValueError, match='positive'):
        rescale_channels(producer, consumer, torch.tensor([1.0, -1.0, 1.0, 1.0], dtype=torch.float64))


def test_cross_layer_scales_give_both_sides_the_same_range():
    producer, consumer = _conv(6, 3, 3, 0), _conv(5, 6, 3, 1)
    producer[0][2] = 0  # a dead channel keeps scale 1
    scales = cross_layer_scales(producer[0], consumer[0])
    assert scales[2] == 1
    new_producer, new_consumer = rescale_channels(producer, consumer, scales)
    live = torch.tensor([c != 2 for c in range(6)])
    assert torch.allclose(output_ranges(new_producer[0])[live], input_ranges(new_consumer[0])[live], rtol=1e-12)


def test_migration_scales_trade_activation_ranges_against_consumer_columns():
    consumer = _conv(5, 6, 3, 1)[0]
    ranges = torch.tensor([20.0, 1.0, 0.5, 3.0, 0.0, 8.0], dtype=torch.float64)  # channel 4 is dead
    lifted = migration_scales(ranges, consumer, alpha=1.0)
    assert lifted[4] == 1
    equal = (ranges / lifted)[ranges > 0]
    assert torch.allclose(equal, equal[0].expand_as(equal), rtol=1e-12)  # α = 1: every channel the same range
    columns = migration_scales(ranges, consumer, alpha=0.0)
    flat = (input_ranges(consumer) * columns)[ranges > 0]
    assert torch.allclose(flat, flat[0].expand_as(flat), rtol=1e-12)  # α = 0: every column the same range
    assert torch.exp(torch.log(lifted[ranges > 0]).mean()) == pytest.approx(1, rel=1e-12)


def test_conv_pairs_of_the_deploy_forms():
    etds = deployable('ETDSForInference').net
    pairs = conv_pairs(etds)
    assert [(p.producer, p.activation, p.consumer) for p in pairs] == [
        ('conv_first', 'relu', 'backbone_convs.0'), *[(f'backbone_convs.{i}', 'relu', f'backbone_convs.{i + 1}')
                                                      for i in range(3)],
        ('backbone_convs.3', 'relu', 'conv_last'), ('conv_last', 'relu', 'conv_clip')]
    prelu = conv_pairs(deployable('ECBSRET').net)
    assert (prelu[0].producer, prelu[0].activation, prelu[0].consumer) == ('backbone.0.0', 'backbone.0.1',
                                                                          'backbone.1.0')
    transposed = conv_pairs(deployable('FSRCNN').net)[-1]
    assert transposed.consumer == 'last_part' and transposed.transposed
    assert conv_pairs(deployable('ESPCN').net) == []  # tanh is not positively homogeneous: nothing to rescale


def test_the_unit_clip_is_recognised():
    net = perturb(build_network(tiny_etds()), 0.05).to_deploy('et')  # a folded clamp, not random weights
    assert is_unit_clip_conv(net.conv_clip) and not is_unit_clip_conv(net.conv_last)


def _histogram():
    from torchao.quantization.pt2e.observer import HistogramObserver

    return functools.partial(HistogramObserver, dtype=torch.int8, quant_min=-128, quant_max=127,
                             qscheme=torch.per_tensor_affine, eps=2**-12)


def _patches(num_in_ch: int, count: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((1, num_in_ch, 20, 18), dtype=np.float32) for _ in range(count)]


@pytest.mark.parametrize('arch', sorted(DEPLOYABLE))
@pytest.mark.parametrize('weights', [True, False])
def test_equalized_deploy_forms_compute_the_same_in_float64(arch, weights):
    model = deployable(arch)
    rescaled, choices = equalize(model.net, _patches(model.num_in_ch), _histogram(), weights=weights)
    x = [torch.rand(2, model.num_in_ch, 15, 13, generator=torch.Generator().manual_seed(3))]
    assert max_difference(model.net, rescaled, x) <= 1e-6
    pairs = [c for c in choices if c.method != 'none']
    if arch in ('ETDSForInference', 'ECBSRET', 'ECBSRT', 'ABPN_ET', 'Plain', 'FSRCNN', 'VDSR', 'SESRInference'):
        assert pairs, f'{arch}: no pair was rescaled'  # the pass did something the check could catch
        assert any(not torch.equal(a, b) for a, b in zip(model.net.state_dict().values(),
                                                         rescaled.state_dict().values(), strict=True))


def test_a_rescaling_that_changes_the_output_is_refused_naming_the_layer(monkeypatch):
    model = deployable('ETDSForInference')

    def off_by_a_bit(producer, consumer, scales, consumer_in_dim=1):
        (pw, pb), rest = rescale_channels(producer, consumer, scales, consumer_in_dim)
        return (pw, pb + 1e-3), rest

    monkeypatch.setattr(equalization, 'rescale_channels', off_by_a_bit)
    monkeypatch.setattr(equalization, '_candidates', lambda net, pair, z: {'cle': torch.full(
        (z.shape[1],), 2.0)})
    with pytest.raises(UserError, match=r'rescaling conv_first -> backbone_convs.0 changed the fp32 output by '
                                        r'.* \(> 1e-06, float64\); export with --no-equalize'):
        equalize(model.net, _patches(3), _histogram())


@pytest.mark.parametrize('slopes', [[0.25, -0.5, 0.0, 1.0, -1.7, 0.05], [0.0] * 6])
def test_a_prelu_split_into_relu_channels_is_exact_in_float64(slopes):
    from core.reparam.equalize import split_prelu

    slopes = torch.tensor(slopes, dtype=torch.float64)
    producer, consumer = _conv(6, 3, 3, 0), _conv(5, 6, 3, 1)
    x = torch.rand(2, 3, 11, 9, dtype=torch.float64) * 4 - 2
    expected = F.conv2d(F.prelu(F.conv2d(x, *producer, padding=1), slopes), *consumer, padding=1)
    new_producer, new_consumer = split_prelu(producer, slopes, consumer)
    assert new_producer[0].shape[0] == 6 + int((slopes != 0).sum())  # a negated copy of each sloped channel
    actual = F.conv2d(F.relu(F.conv2d(x, *new_producer, padding=1)), *new_consumer, padding=1)
    assert (actual - expected).abs().max() <= 1e-12 * expected.abs().max()


@pytest.mark.parametrize('arch', ['ECBSRET', 'ECBSRT', 'FSRCNN'])
def test_prelu_networks_split_into_relu_networks_that_compute_the_same(arch):
    from core.deploy.equalization import split_prelus

    model = deployable(arch)
    split, count = split_prelus(model.net)
    assert count == len([p for p in conv_pairs(model.net) if p.activation not in ('relu', 'identity')]) > 0
    assert not any(isinstance(m, torch.nn.PReLU) for name, m in split.named_modules()
                   if name in {p.activation for p in conv_pairs(model.net)})
    x = [torch.rand(2, model.num_in_ch, 15, 13, generator=torch.Generator().manual_seed(3))]
    assert max_difference(model.net, split, x) <= 1e-6


@pytest.mark.parametrize('activation', [torch.tanh, torch.sigmoid])
def test_channel_groups_are_exact_in_float64(activation):
    from core.reparam.equalize import group_channels

    producer, consumer = _conv(6, 3, 3, 0), _conv(5, 6, 3, 1)
    x = torch.rand(2, 3, 11, 9, dtype=torch.float64) * 4 - 2
    expected = F.conv2d(activation(F.conv2d(x, *producer, padding=1)), *consumer, padding=1)
    groups = [torch.tensor([4, 1]), torch.tensor([0]), torch.tensor([5, 2, 3])]
    parts, new_consumer = group_channels(producer, consumer, groups)
    assert [p[0].shape[0] for p in parts] == [2, 1, 3]
    hidden = torch.cat([activation(F.conv2d(x, *part, padding=1)) for part in parts], dim=1)
    actual = F.conv2d(hidden, *new_consumer, padding=1)
    assert (actual - expected).abs().max() <= 1e-12 * expected.abs().max()
    with pytest.raises(ValueError, match='every output channel exactly once'):
        group_channels(producer, consumer, [torch.tensor([0, 1, 2]), torch.tensor([2, 3, 4, 5])])


def test_convs_before_tanh_run_in_channel_groups_of_similar_range():
    from core.deploy.activation_groups import GROUPS, ChannelGroups, group_saturating_channels

    model = deployable('ESPCN')  # conv1 → tanh → conv2 → tanh → conv3
    with torch.no_grad():  # ranges 10⁴-fold apart (the trained ESPCN spans ±275)
        model.net.conv1.weight.mul_(torch.logspace(-2, 2, model.net.conv1.out_channels).view(-1, 1, 1, 1))
    patches = _patches(3)
    grouped, count = group_saturating_channels(model.net, patches)
    assert count == 1  # conv2's channels share one range: splitting them would cost time and win nothing
    groups = [m for m in grouped.modules() if isinstance(m, ChannelGroups)]
    assert [len(g.convs) for g in groups] == [GROUPS]
    assert isinstance(grouped.get_submodule('conv2'), torch.nn.Conv2d)
    assert sum(c.out_channels for c in groups[0].convs) == model.net.conv1.out_channels
    x = [torch.rand(2, 3, 15, 13, generator=torch.Generator().manual_seed(3)), torch.from_numpy(patches[0])]
    assert max_difference(model.net, grouped, x) <= 1e-6
    with torch.no_grad():  # the first group holds the narrowest channels: the ones scaled down most
        first = groups[0].convs[0].weight.abs().amax(dim=(1, 2, 3)).max()
        last = groups[0].convs[-1].weight.abs().amax(dim=(1, 2, 3)).min()
    assert first < last
    plain = deployable('Plain')
    assert group_saturating_channels(plain.net, patches) == (plain.net.float(), 0)  # no tanh: as it was
