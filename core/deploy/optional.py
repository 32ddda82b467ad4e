"""Optional packages of the `export` extra, imported on first use with a one-line error naming the install."""

from __future__ import annotations

import importlib
from types import ModuleType

from core.errors import UserError

INSTALL_HINT = "pip install -r requirements.txt (or pip install -e '.[export]')"


def require(module: str, package: str) -> ModuleType:
    """Import `module`; if its package is missing, say which one and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise UserError(f'{package} is not installed ({err.msg}); {INSTALL_HINT}') from None
