"""Outputs that appear whole or not at all: write to a hidden temporary file beside the target, check, rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from os import path as osp


@contextlib.contextmanager
def staged_file(output: str) -> Iterator[str]:
    """Yield a temporary path with `output`'s extension; it becomes `output` only if the block succeeds.

    The file gets the mode a plain `open()` would give it (mkstemp's is owner-only).
    """
    folder = osp.dirname(osp.abspath(output))
    os.makedirs(folder, exist_ok=True)
    stem, ext = osp.splitext(osp.basename(output))
    fd, tmp = tempfile.mkstemp(prefix=f'.{stem}.', suffix=f'.tmp{ext}', dir=folder)
    os.close(fd)
    try:
        yield tmp
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, output)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
