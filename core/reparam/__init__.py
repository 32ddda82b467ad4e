"""Pure reparameterization math: functions of (weight, bias) tensors, no nn.Module state.

Every converter in `core.converters` is built from these, and each is tested once in tests/test_reparam.py.
"""

from core.reparam.clamp import clamp_tail, negate_for_upper_clamp, unit_clip_conv
from core.reparam.kernels import Conv, identity_kernel, pad_out_channels
from core.reparam.streams import join_inputs, merge_dual_stream, stack_outputs

__all__ = [
    'Conv',
    'clamp_tail',
    'identity_kernel',
    'join_inputs',
    'merge_dual_stream',
    'negate_for_upper_clamp',
    'pad_out_channels',
    'stack_outputs',
    'unit_clip_conv',
]
