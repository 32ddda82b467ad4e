"""`import core.plugin` registers our archs, converters, datasets and models into basicsr's registries."""

from core import archs, converters, data, models  # noqa: F401  (each package imports its *_arch, ... modules)

__all__ = ['archs', 'converters', 'data', 'models']
