"""The one exception type users see, and the wrapper that prints it as a single line.

Both live in core.cli, which must stay importable without torch; this module is their usual name.
"""

from core.cli import UserError, run_cli

__all__ = ['UserError', 'run_cli']
