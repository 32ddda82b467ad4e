"""The mobile-SR plugin for basicsr. `import core` registers our archs, models and datasets.

The torchvision alias in core.compat must run before basicsr is first imported.
"""

from core.compat import alias_functional_tensor

alias_functional_tensor()

from core import archs, converters, data, models  # noqa: E402  (registration order matters)

__all__ = ['archs', 'converters', 'data', 'models']
