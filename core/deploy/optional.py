"""Optional packages (the `export` extra, and one extra per runtime), imported on first use with a one-line
error naming the install."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from core.deploy.native_logs import native_output_to_log
from core.errors import UserError

EXTRAS = {'pnnx': 'ncnn', 'ncnn': 'ncnn', 'executorch': 'executorch', 'coremltools': 'coreml',
          'openvino': 'openvino'}  # the other packages are in the `export` extra


def install_hint(package: str) -> str:
    return f"pip install -r requirements.txt (or pip install -e '.[{EXTRAS.get(package, 'export')}]')"


def require(module: str, package: str) -> ModuleType:
    """Import `module`; if its package is missing, say which one and how to install it."""
    if sys.modules.get(module) is not None:  # None there means "known to be missing"
        return sys.modules[module]
    try:
        with native_output_to_log(f'import {module}'):  # torchao warns through torch's logging on import
            return importlib.import_module(module)
    except ImportError as err:
        raise UserError(f'{package} is not installed ({err.msg}); {install_hint(package)}') from None
