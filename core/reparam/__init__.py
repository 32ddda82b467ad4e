"""Pure reparameterization math: functions of (weight, bias) tensors, no nn.Module state.

Every converter in `core.convert` is built from these, and each is tested once in tests/test_reparam*.py.
"""

from core.reparam.bicubic import bicubic_phase_taps, bicubic_upsample_kernel, symmetric_pad
from core.reparam.branches import (
    compose_1x1_depthwise,
    compose_1x1_kxk,
    compose_kxk_1x1,
    depthwise_as_full,
    laplacian,
    sobel_x,
    sobel_y,
    sum_convs,
)
from core.reparam.carry import (
    carry_hidden_layers,
    fold_carried_input,
    fold_shortcut_into_last,
    pad_in_channels,
    repeat_interleave_conv,
)
from core.reparam.clamp import clamp_tail, is_unit_clip, negate_for_upper_clamp, unit_clip_conv
from core.reparam.kernels import Conv, identity_kernel, pad_out_channels
from core.reparam.shuffle import from_stepwise_shuffle, stepwise_shuffle_order, to_stepwise_shuffle
from core.reparam.streams import join_inputs, merge_dual_stream, stack_outputs

__all__ = [
    'Conv',
    'bicubic_phase_taps',
    'bicubic_upsample_kernel',
    'carry_hidden_layers',
    'clamp_tail',
    'compose_1x1_depthwise',
    'compose_1x1_kxk',
    'compose_kxk_1x1',
    'depthwise_as_full',
    'fold_carried_input',
    'fold_shortcut_into_last',
    'from_stepwise_shuffle',
    'identity_kernel',
    'is_unit_clip',
    'join_inputs',
    'laplacian',
    'merge_dual_stream',
    'negate_for_upper_clamp',
    'pad_in_channels',
    'pad_out_channels',
    'repeat_interleave_conv',
    'sobel_x',
    'sobel_y',
    'stack_outputs',
    'stepwise_shuffle_order',
    'sum_convs',
    'symmetric_pad',
    'to_stepwise_shuffle',
    'unit_clip_conv',
]
