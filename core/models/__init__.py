"""Importing this package registers every `*_model.py` in it into basicsr's MODEL_REGISTRY."""

from core.plugin_scan import import_modules

MODEL_MODULES = import_modules(__name__, __file__, '_model')
