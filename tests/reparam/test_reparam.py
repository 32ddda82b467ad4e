"""Each fold of core.reparam proven on random tensors (float64, so any error is the math's, not rounding's)."""

import pytest
import torch
from torch.nn import functional as F

from core.reparam import (
    bicubic_phase_taps,
    bicubic_upsample_kernel,
    clamp_tail,
    identity_kernel,
    join_inputs,
    merge_dual_stream,
    pad_out_channels,
    stack_outputs,
    stepwise_shuffle_order,
    symmetric_pad,
    to_stepwise_shuffle,
    unit_clip_conv,
)
from core.reparam.shuffle import from_stepwise_shuffle

torch.manual_seed(0)


def rand_conv(out_ch: int, in_ch: int, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(out_ch, in_ch, k, k, dtype=torch.float64), torch.randn(out_ch, dtype=torch.float64)


def conv(x: torch.Tensor, params: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    weight, bias = params
    return F.conv2d(x, weight, bias, padding=weight.shape[-1] // 2)


@pytest.mark.parametrize('k', [1, 3, 5])
def test_identity_kernel_returns_its_input(k):
    x = torch.randn(2, 4, 9, 7, dtype=torch.float64)
    weight = identity_kernel(4, k, dtype=torch.float64)
    assert torch.equal(F.conv2d(x, weight, padding=k // 2), x)


def test_pad_out_channels_appends_constant_channels():
    weight, bias = rand_conv(27, 5)
    padded_w, padded_b = pad_out_channels((weight, bias), 4, bias_value=1.0)
    assert padded_w.shape == (28, 5, 3, 3) and padded_b.shape == (28,)
    assert torch.equal(padded_w[:27], weight) and torch.equal(padded_b[:27], bias)
    x = torch.randn(1, 5, 6, 6, dtype=torch.float64)
    assert torch.equal(conv(x, (padded_w, padded_b))[:, 27], torch.ones(1, 6, 6, dtype=torch.float64))
    same = pad_out_channels((weight[:24], bias[:24]), 4)
    assert same[0].shape[0] == 24


def test_stack_outputs_concatenates_parallel_convs():
    a, b = rand_conv(5, 3), rand_conv(2, 3)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    expected = torch.cat([conv(x, a), conv(x, b)], dim=1)
    torch.testing.assert_close(conv(x, stack_outputs(a, b)), expected, rtol=0, atol=1e-12)


def test_join_inputs_sums_convs_of_split_input():
    a, b = rand_conv(4, 5), rand_conv(4, 2)
    x, r = torch.randn(2, 5, 8, 8, dtype=torch.float64), torch.randn(2, 2, 8, 8, dtype=torch.float64)
    expected = conv(x, a) + conv(r, b)
    torch.testing.assert_close(conv(torch.cat([x, r], 1), join_inputs(a, b)), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize('with_a', [True, False])
@pytest.mark.parametrize('with_d', [True, False])
def test_merge_dual_stream_is_the_block_matrix(with_a, with_d):
    backbone, residual = rand_conv(6, 6), rand_conv(3, 3)
    a = rand_conv(6, 3) if with_a else None
    d = rand_conv(3, 6) if with_d else None
    x, r = torch.randn(2, 6, 7, 9, dtype=torch.float64), torch.randn(2, 3, 7, 9, dtype=torch.float64)
    new_x = conv(x, backbone) + (conv(r, a) if a else 0)
    new_r = conv(r, residual) + (conv(x, d) if d else 0)
    merged = merge_dual_stream(backbone, residual, a, d)
    assert merged[0].shape == (9, 9, 3, 3)
    out = F.relu(conv(torch.cat([x, r], 1), merged))
    torch.testing.assert_close(out, F.relu(torch.cat([new_x, new_r], 1)), rtol=0, atol=1e-12)
    if not with_d:
        assert torch.count_nonzero(merged[0][6:, :6]) == 0  # block upper-triangular


def test_clamp_tail_is_clamp_between_zero_and_one():
    last = rand_conv(12, 4)
    x = torch.randn(2, 4, 10, 10, dtype=torch.float64)
    y = conv(x, last)
    assert (y < 0).any() and (y > 1).any() and ((y > 0) & (y < 1)).any()
    negated, clip = clamp_tail(last)
    out = F.relu(conv(F.relu(conv(x, negated)), clip))
    torch.testing.assert_close(out, y.clamp(0, 1), rtol=0, atol=1e-12)


def test_unit_clip_conv_is_one_minus_input():
    u = torch.rand(1, 5, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(conv(u, unit_clip_conv(5, dtype=torch.float64)), 1 - u, rtol=0, atol=0)


def test_two_pixel_shuffles_of_2_take_channel_c16_p8_q4_a2_b_from_c16_a8_p4_b2_q():
    """The closed form for x4: sub-pixel (2a + p, 2b + q) of colour c."""
    order = stepwise_shuffle_order(32, (2, 2))
    expected = torch.empty(32, dtype=torch.long)
    for c in range(2):
        for a in range(2):
            for p in range(2):
                for b in range(2):
                    for q in range(2):
                        expected[c * 16 + a * 8 + p * 4 + b * 2 + q] = c * 16 + p * 8 + q * 4 + a * 2 + b
    assert torch.equal(order, expected)


@pytest.mark.parametrize('steps', [(2, 2), (2, 3), (3, 2), (2, 2, 2)])
def test_stepwise_shuffle_of_reordered_conv_is_one_shuffle(steps):
    scale = 1
    for step in steps:
        scale *= step
    params = rand_conv(2 * scale * scale, 3)
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    stepwise = conv(x, to_stepwise_shuffle(params, steps))
    for step in steps:
        stepwise = F.pixel_shuffle(stepwise, step)
    torch.testing.assert_close(stepwise, F.pixel_shuffle(conv(x, params), scale), rtol=0, atol=1e-12)
    back = from_stepwise_shuffle(to_stepwise_shuffle(params, steps), steps)
    assert all(torch.equal(a, b) for a, b in zip(back, params, strict=True))


def test_stepwise_shuffle_refuses_a_channel_count_it_cannot_shuffle():
    with pytest.raises(ValueError, match='cannot be pixel-shuffled by 4'):
        stepwise_shuffle_order(24, (2, 2))


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_bicubic_conv_is_matlab_imresize_everywhere(scale):
    """The depthwise conv + PixelShuffle equals basicsr's imresize on whole images, borders included."""
    from basicsr.utils.matlab_functions import imresize

    from core.archs.shared import BicubicUpsample

    taps = bicubic_phase_taps(scale)
    assert torch.allclose(taps.sum(dim=1), torch.ones(scale, dtype=torch.float64))  # every phase keeps flat areas
    x = torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(scale))
    expected = torch.stack([imresize(img, scale) for img in x])
    actual = BicubicUpsample(scale)(x)
    assert actual.shape == expected.shape == (2, 3, 13 * scale, 17 * scale)
    assert (actual - expected).abs().max() <= 2e-6  # float32 rounding of basicsr's own weights
    assert bicubic_upsample_kernel(scale).shape == (scale * scale, 1, 5, 5)


def test_symmetric_pad_is_matlabs_mirror():
    x = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4)
    assert symmetric_pad(x, 2)[0, 0, 0].tolist() == [1, 0, 0, 1, 2, 3, 3, 2]
