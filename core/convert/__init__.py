"""From training forms to deployable forms: each network folds itself (`to_deploy`), the registry reads the folds
the networks declare, the resolver turns any checkpoint file into its network, and a fold is verified in float64
before anything is written."""

from core.convert.conversion import ConversionReport, convert_checkpoint, convert_network, convert_verified, verify
from core.convert.registry import converters, get_converter, is_training_form
from core.convert.resolver import load_network, network_block, resolve_architecture

__all__ = [
    'ConversionReport',
    'convert_checkpoint',
    'convert_network',
    'convert_verified',
    'converters',
    'get_converter',
    'is_training_form',
    'load_network',
    'network_block',
    'resolve_architecture',
    'verify',
]
