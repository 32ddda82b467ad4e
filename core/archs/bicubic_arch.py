"""Bicubic upsampling as a network, so the baseline runs through the same test pipeline, metrics and export."""

from __future__ import annotations

from basicsr.utils.registry import ARCH_REGISTRY

from core.archs.shared import BicubicUpsample


@ARCH_REGISTRY.register()
class Bicubic(BicubicUpsample):
    """MATLAB-style bicubic upsampling (basicsr's `imresize`, as a fixed conv), with no weights."""
