"""Converters from training forms to deployable forms, registered by source architecture."""

from core.converters import abpn, baselines, ecbsr, etds, sesr  # noqa: F401  (each registers its family)
from core.converters.api import (
    ConversionReport,
    convert_checkpoint,
    convert_network,
    convert_verified,
    load_network,
    verify,
)
from core.converters.registry import CONVERTERS, detect_architecture, get_converter

__all__ = [
    'CONVERTERS',
    'ConversionReport',
    'convert_checkpoint',
    'convert_network',
    'convert_verified',
    'detect_architecture',
    'get_converter',
    'load_network',
    'verify',
]
