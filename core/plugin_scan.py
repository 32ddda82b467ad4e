"""basicsr's registration convention: a package imports every module whose name ends in a suffix."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType


def import_modules(package: str, package_file: str, suffix: str) -> list[ModuleType]:
    """Import `package.<name><suffix>` for each such file beside `package_file`, in name order."""
    folder = Path(package_file).parent
    return [importlib.import_module(f'{package}.{p.stem}') for p in sorted(folder.glob(f'*{suffix}.py'))]
