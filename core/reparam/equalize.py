"""Per-channel rescaling between two convolutions: the same function, a different int8 error.

An activation f with f(s·z) = s·f(z) for every s > 0 (ReLU, PReLU with its per-channel slopes, the identity)
lets channel c of a producer conv be divided by s_c, weights and bias, and the consumer conv's input channel c
be multiplied by s_c: the consumer's output does not change (Nagel et al., ICCV 2019, "Data-Free Quantization
Through Weight Equalization and Bias Correction"). int8 does change. A runtime quantizes each activation tensor
with one scale (per tensor) and each consumer weight row with one scale (per output channel), so

- s_c large shrinks channel c of the activation, which then gets fewer of the tensor's levels;
- s_c large grows column c of every consumer row, which then takes more of the row's levels.

`migration_scales` trades the two off with one exponent (the form SmoothQuant, Xiao et al. 2023, uses between
activations and weights); the exponent is chosen by the error it causes (core.deploy.equalization).
"""

from __future__ import annotations

import torch

from core.reparam.kernels import Conv


def rescale_channels(producer: Conv, consumer: Conv, scales: torch.Tensor, consumer_in_dim: int = 1) -> tuple[
        Conv, Conv]:
    """(producer / s per output channel, consumer · s per input channel): exact across ReLU and PReLU.

    `consumer_in_dim` is the weight dimension that indexes the consumer's input channels: 1 for Conv2d,
    0 for ConvTranspose2d. `scales` must be positive (a negative one would not commute with ReLU).
    """
    if not bool((scales > 0).all()):
        raise ValueError('channel scales must be positive to commute with ReLU and PReLU')
    weight, bias = producer
    shape = [1] * weight.dim()
    shape[0] = -1
    producer = (weight / scales.view(shape), bias / scales)
    consumer_weight, consumer_bias = consumer
    shape = [1] * consumer_weight.dim()
    shape[consumer_in_dim] = -1
    return producer, (consumer_weight * scales.view(shape), consumer_bias)


def output_ranges(weight: torch.Tensor) -> torch.Tensor:
    """max |w| of each output channel (dimension 0): what a per-channel weight scale must cover."""
    return weight.abs().flatten(1).amax(dim=1)


def input_ranges(weight: torch.Tensor, in_dim: int = 1) -> torch.Tensor:
    """max |w| over everything that reads input channel c: the column's share of its rows' ranges."""
    return weight.abs().transpose(0, in_dim).flatten(1).amax(dim=1)


def _live(*ranges: torch.Tensor) -> torch.Tensor:
    live = torch.ones_like(ranges[0], dtype=torch.bool)
    for r in ranges:
        live &= r > 0
    return live


def cross_layer_scales(producer_weight: torch.Tensor, consumer_weight: torch.Tensor,
                       consumer_in_dim: int = 1) -> torch.Tensor:
    """Nagel's equalization: s_c = sqrt(r1_c / r2_c) gives producer row c and consumer column c the same range
    sqrt(r1_c·r2_c). Channels that are zero on either side keep s = 1."""
    r1, r2 = output_ranges(producer_weight), input_ranges(consumer_weight, consumer_in_dim)
    live = _live(r1, r2)
    scales = torch.ones_like(r1)
    scales[live] = (r1[live] / r2[live]).sqrt()
    return scales


def migration_scales(activation_ranges: torch.Tensor, consumer_weight: torch.Tensor, alpha: float,
                     consumer_in_dim: int = 1) -> torch.Tensor:
    """s_c = a_c^α / r2_c^(1−α), normalised to geometric mean 1 over live channels.

    α = 1 gives every activation channel the same range (a carried image channel in 0…1 gets the levels of a
    feature channel in 0…20); α = 0 gives every consumer column the same range; between them both are traded.
    Dead channels (a_c = 0 or r2_c = 0) keep s = 1.
    """
    r2 = input_ranges(consumer_weight, consumer_in_dim)
    live = _live(activation_ranges, r2)
    scales = torch.ones_like(r2)
    if not bool(live.any()):
        return scales
    log = alpha * activation_ranges[live].log() - (1 - alpha) * r2[live].log()
    scales[live] = (log - log.mean()).exp()
    return scales


def split_prelu(producer: Conv, slopes: torch.Tensor, consumer: Conv, consumer_in_dim: int = 1) -> tuple[Conv, Conv]:
    """PReLU(z) = ReLU(z) − a·ReLU(−z): every channel with a ≠ 0 is produced twice, the copy negated, and the
    consumer reads the copy with −a times the channel's column. The pair then runs with ReLU, which a runtime
    fuses into the producer, so the conv output is never quantized with its negative side (where a PReLU of
    small slope spends most of a tensor's levels on values it then shrinks).
    """
    weight, bias = producer
    split = slopes != 0
    producer = torch.cat([weight, -weight[split]]), torch.cat([bias, -bias[split]])
    consumer_weight, consumer_bias = consumer
    columns = consumer_weight.index_select(consumer_in_dim, split.nonzero().flatten().to(consumer_weight.device))
    shape = [1] * consumer_weight.dim()
    shape[consumer_in_dim] = -1
    copies = -slopes[split].to(consumer_weight).view(shape) * columns
    return producer, (torch.cat([consumer_weight, copies], dim=consumer_in_dim), consumer_bias)


def group_channels(producer: Conv, consumer: Conv, groups: list[torch.Tensor],
                   consumer_in_dim: int = 1) -> tuple[list[Conv], Conv]:
    """The producer's output channels as separate convs, one per group (any activation then runs on each group
    apart), and the consumer's input columns reordered to the groups concatenated: exact for any elementwise
    activation. A runtime quantizes each group's pre-activation tensor with its own scale, which no rescaling can
    give a channel before tanh or sigmoid (neither commutes with a scale)."""
    weight, bias = producer
    order = torch.cat(groups).to(weight.device)
    if not torch.equal(torch.sort(order).values, torch.arange(weight.shape[0], device=weight.device)):
        raise ValueError('the groups must hold every output channel exactly once')
    parts = [(weight[index], bias[index]) for index in groups]
    consumer_weight, consumer_bias = consumer
    return parts, (consumer_weight.index_select(consumer_in_dim, order.to(consumer_weight.device)), consumer_bias)
