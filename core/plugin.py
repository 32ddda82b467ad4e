"""`import core.plugin` registers our archs, datasets and models into basicsr's registries.

basicsr's own convention: each family is one module whose name ends in `_arch`, `_dataset` or `_model`, and
importing it runs its `@REGISTRY.register()` decorators. Registration happens here, explicitly, and nowhere else.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

_ROOT = Path(__file__).parent
REGISTERED_FOLDERS = {'archs': '_arch', 'data': '_dataset', 'training/models': '_model'}


def _import_modules(folder: str, suffix: str) -> list[ModuleType]:
    package = 'core.' + folder.replace('/', '.')
    return [importlib.import_module(f'{package}.{p.stem}') for p in sorted((_ROOT / folder).glob(f'*{suffix}.py'))]


REGISTERED_MODULES = [module for folder, suffix in REGISTERED_FOLDERS.items()
                      for module in _import_modules(folder, suffix)]
