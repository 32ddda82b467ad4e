"""Detectors for the families with nothing to fold, so the converter can say so in one line."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from core.converters.common import scale_from_channels
from core.converters.registry import register_detector


@register_detector
def detect_baselines(state: Mapping[str, torch.Tensor]) -> tuple[str, dict] | None:
    if 'conv_clip.weight' in state:
        return 'ETDSForInference', {}
    if 'first_part.0.weight' in state and 'last_part.weight' in state:
        return 'FSRCNN', {}
    if 'conv1.weight' in state and 'conv3.weight' in state:
        colors = state['conv1.weight'].shape[1]
        return 'ESPCN', {'colors': colors, 'upscale': scale_from_channels(state['conv3.weight'].shape[0], colors)}
    if 'conv_first.weight' in state and 'conv_last.weight' in state and 'conv_residual_first.weight' not in state:
        return 'Plain', {}
    return None
