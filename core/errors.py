"""The one exception type users see, and the wrapper that prints it as a single line (standard library only)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar('T')


class UserError(Exception):
    """A problem the user can fix (bad option, missing data, wrong checkpoint).

    Entry points print it as one line without a traceback, so the message must name the fix.
    """


def run_cli(main: Callable[[], T]) -> T:
    """Run an entry point; a UserError becomes `error: ...` on stderr and exit status 2."""
    try:
        return main()
    except UserError as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
