"""Notices that export and runtime libraries print straight to the process's stderr, kept for the log instead.

TensorFlow Lite, absl and oneDNN write from C++ to file descriptor 2 (`I0000 ... flatbuffer_export.cc`, `INFO:
Created TensorFlow Lite XNNPACK delegate`), where `contextlib.redirect_stderr` cannot reach. Around the calls that
print them, descriptor 2 points at a temporary file; what was written goes to the `core.deploy` logger at DEBUG
(a log file attached to it keeps them) and never to the user's terminal. Errors still raise as usual.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

LOGGER = logging.getLogger('core.deploy')


@contextlib.contextmanager
def native_output_to_log(what: str) -> Iterator[None]:
    """Descriptor-level capture of stderr and stdout while `what` runs; the captured lines are logged."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile(mode='w+b') as capture:
        try:
            for fd in saved:
                os.dup2(capture.fileno(), fd)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            capture.seek(0)
            for line in capture.read().decode(errors='replace').splitlines():
                if line.strip():
                    LOGGER.debug('%s: %s', what, line)
