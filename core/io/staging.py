"""Outputs that appear whole or not at all: write to a hidden temporary file beside the target, check, rename."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from os import path as osp

from core.errors import UserError

# `.{stem}.{8 random characters}.tmp{ext}`: what staged_file creates and a killed process may leave behind
_TEMPORARY = re.compile(r'^\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+)?$')


@contextlib.contextmanager
def staged_file(output: str) -> Iterator[str]:
    """Yield a temporary path with `output`'s extension; it becomes `output` only if the block succeeds.

    The file gets the mode a plain `open()` would give it (mkstemp's is owner-only), so a shared model
    stays readable. A folder that cannot be written (read-only, full) is a one-line error naming it.
    """
    folder = osp.dirname(osp.abspath(output))
    stem, ext = osp.splitext(osp.basename(output))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f'.{stem}.', suffix=f'.tmp{ext}', dir=folder)
        os.close(fd)
        yield tmp
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, output)
    except OSError as err:
        raise UserError(f'cannot write {output}: {err.strerror or err}; choose a writable folder with free space '
                        'or fix the folder') from None
    finally:
        if tmp is not None and osp.exists(tmp):
            os.remove(tmp)


def remove_orphaned_temporaries(folder: str) -> list[str]:
    """Delete the temporary files an interrupted staged_file left in `folder`; returns their names."""
    if not osp.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        if _TEMPORARY.match(name) and osp.isfile(osp.join(folder, name)):
            os.remove(osp.join(folder, name))
            removed.append(name)
    return removed
