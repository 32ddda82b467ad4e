"""Importing this package registers every `*_arch.py` in it into basicsr's ARCH_REGISTRY."""

from core.plugin_scan import import_modules

ARCH_MODULES = import_modules(__name__, __file__, '_arch')
