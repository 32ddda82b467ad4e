"""Branch folds (1×1∘k×k with bias padding, depthwise edge masks) and the carried-shortcut ET, in float64."""

import pytest
import torch
from torch.nn import functional as F

from core.reparam import (
    carry_hidden_layers,
    compose_1x1_depthwise,
    compose_1x1_kxk,
    depthwise_as_full,
    fold_carried_input,
    fold_shortcut_into_last,
    laplacian,
    pad_in_channels,
    repeat_interleave_conv,
    sobel_x,
    sobel_y,
    sum_convs,
)

D = torch.float64


def conv(x, params, padding=None):
    weight, bias = params
    return F.conv2d(x, weight, bias, padding=weight.shape[-1] // 2 if padding is None else padding)


def test_edge_masks():
    assert sobel_x()[:, 0].tolist() == [1, 2, 1] and sobel_x()[:, 2].tolist() == [-1, -2, -1]
    assert torch.equal(sobel_y(), sobel_x().t())
    assert laplacian().tolist() == [[0, 1, 0], [1, -4, 1], [0, 1, 0]]


def test_compose_1x1_kxk_is_exact_at_the_borders_with_bias_padding():
    k0, b0 = torch.randn(6, 4, 1, 1, dtype=D), torch.randn(6, dtype=D)
    k1, b1 = torch.randn(5, 6, 3, 3, dtype=D), torch.randn(5, dtype=D)
    x = torch.randn(2, 4, 7, 9, dtype=D)
    y0 = F.conv2d(x, k0, b0)
    y0 = F.pad(y0 - b0.view(1, -1, 1, 1), (1, 1, 1, 1)) + b0.view(1, -1, 1, 1)  # border filled with b0
    expected = F.conv2d(y0, k1, b1)
    torch.testing.assert_close(conv(x, compose_1x1_kxk((k0, b0), (k1, b1))), expected, rtol=0, atol=1e-12)


def test_depthwise_as_full_equals_a_grouped_conv():
    dw = torch.randn(5, 1, 3, 3, dtype=D)
    x = torch.randn(1, 5, 6, 6, dtype=D)
    torch.testing.assert_close(F.conv2d(x, depthwise_as_full(dw), padding=1), F.conv2d(x, dw, padding=1, groups=5),
                               rtol=0, atol=1e-12)


def test_compose_1x1_depthwise_equals_the_dense_composition():
    k0, b0 = torch.randn(5, 3, 1, 1, dtype=D), torch.randn(5, dtype=D)
    dw, b_dw = torch.randn(5, 1, 1, 1, dtype=D) * sobel_x(D), torch.randn(5, dtype=D)
    fast = compose_1x1_depthwise((k0, b0), (dw, b_dw))
    dense = compose_1x1_kxk((k0, b0), (depthwise_as_full(dw), b_dw))
    torch.testing.assert_close(fast, dense, rtol=0, atol=1e-12)


def test_sum_convs_adds_parallel_branches():
    a = (torch.randn(3, 2, 3, 3, dtype=D), torch.randn(3, dtype=D))
    b = (torch.randn(3, 2, 3, 3, dtype=D), torch.randn(3, dtype=D))
    x = torch.randn(1, 2, 5, 5, dtype=D)
    torch.testing.assert_close(conv(x, sum_convs(a, b)), conv(x, a) + conv(x, b), rtol=0, atol=1e-12)


def test_repeat_interleave_conv_and_pad_in_channels():
    x = torch.rand(2, 3, 4, 5, dtype=D)
    weight = torch.empty(0, dtype=D)
    torch.testing.assert_close(conv(x, repeat_interleave_conv(3, 9, 3, weight)),
                               torch.repeat_interleave(x, 9, dim=1), rtol=0, atol=0)
    padded = pad_in_channels((torch.randn(2, 3, 3, 3, dtype=D), torch.zeros(2, dtype=D)), 5)
    assert padded[0].shape == (2, 5, 3, 3) and torch.count_nonzero(padded[0][:, 3:]) == 0


@pytest.mark.parametrize('scale', [2, 3, 4])
@pytest.mark.parametrize('multiple', [2, 4])
def test_carried_chain_equals_shortcut_chain_clamped(scale, multiple):
    torch.manual_seed(scale)
    widths = [3, 10, 10, 7]
    hidden = [(torch.randn(o, i, 3, 3, dtype=D) * 0.3, torch.randn(o, dtype=D) * 0.1)
              for i, o in zip(widths[:-1], widths[1:], strict=True)]
    last = (torch.randn(3 * scale * scale, 7, 3, 3, dtype=D) * 0.3, torch.randn(3 * scale * scale, dtype=D) * 0.1)
    x = torch.rand(2, 3, 9, 8, dtype=D)
    h = x
    for layer in hidden:
        h = F.relu(conv(h, layer))
    expected = (conv(h, last) + torch.repeat_interleave(x, scale * scale, dim=1)).clamp(0, 1)

    carried = carry_hidden_layers(hidden, 3, multiple)
    assert all(w.shape[0] % multiple == 0 for w, _ in carried)
    new_last, clip = fold_shortcut_into_last(last, 3, scale, carried[-1][0].shape[0])
    h = x
    for layer in carried:
        h = F.relu(conv(h, layer))
    out = F.relu(conv(F.relu(conv(h, new_last)), clip))
    assert out.shape[1] % 4 == 0
    torch.testing.assert_close(out[:, :3 * scale * scale], expected, rtol=0, atol=1e-12)

    whole = fold_carried_input(hidden, last, 3, scale, multiple)  # the one call every family's fold makes
    assert len(whole) == len(hidden) + 2
    for (w, b), (w_ref, b_ref) in zip(whole, [*carried, new_last, clip], strict=True):
        assert torch.equal(w, w_ref) and torch.equal(b, b_ref)
