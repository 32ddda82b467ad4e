"""Converters from training forms to deployable forms: each network folds itself (`to_deploy`), the registry
reads the folds the networks declare, and the API verifies a fold in float64 before anything is written."""

from core.archs.detection import detect_architecture
from core.converters.api import (
    ConversionReport,
    convert_checkpoint,
    convert_network,
    convert_verified,
    load_network,
    verify,
)
from core.converters.registry import converters, get_converter, is_training_form

__all__ = [
    'ConversionReport',
    'convert_checkpoint',
    'convert_network',
    'convert_verified',
    'converters',
    'detect_architecture',
    'get_converter',
    'is_training_form',
    'load_network',
    'verify',
]
