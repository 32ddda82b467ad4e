"""Optional packages of the `export` extra, imported on first use with a one-line error naming the install."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from core.deploy.native_logs import native_output_to_log
from core.errors import UserError

INSTALL_HINT = "pip install -r requirements.txt (or pip install -e '.[export]')"


def require(module: str, package: str) -> ModuleType:
    """Import `module`; if its package is missing, say which one and how to install it."""
    if module in sys.modules:
        return sys.modules[module]
    try:
        with native_output_to_log(f'import {module}'):  # torchao warns through torch's logging on import
            return importlib.import_module(module)
    except ImportError as err:
        raise UserError(f'{package} is not installed ({err.msg}); {INSTALL_HINT}') from None
