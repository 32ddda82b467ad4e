"""Importing this package registers every `*_dataset.py` in it into basicsr's DATASET_REGISTRY."""

from core.plugin_scan import import_modules

DATASET_MODULES = import_modules(__name__, __file__, '_dataset')
