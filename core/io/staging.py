"""Outputs that appear whole or not at all: write to a hidden temporary file beside the target, check, rename."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from os import path as osp

from core.errors import UserError

# `.{stem}.{8 random characters}.tmp{ext}`: what staged_file and staged_outputs create and a killed process may leave
_TEMPORARY = re.compile(r'^\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+)?$')


def _file_mode() -> int:
    """The mode a plain `open()` gives a new file under the current umask (which can only be read by setting it)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _cannot_write(output: str, err: OSError) -> UserError:
    return UserError(f'cannot write {output}: {err.strerror or err}; choose a writable folder with free space or '
                     'fix the folder')


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
        os.chmod(tmp, _file_mode())
        os.replace(tmp, output)
    except OSError as err:
        raise _cannot_write(output, err) from None
    finally:
        if tmp is not None and osp.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def staged_outputs(outputs: list[str]) -> Iterator[list[str]]:
    """Yield one temporary path per output (a file or a folder, like .mlpackage), inside a hidden folder beside
    the first; they replace their outputs only if the block succeeds, the first output last, so a model file
    never appears without the weights file it names. Outputs share one folder."""
    folder = osp.dirname(osp.abspath(outputs[0]))
    stem = osp.splitext(osp.basename(outputs[0]))[0]
    staging = None
    try:
        os.makedirs(folder, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f'.{stem}.', suffix='.tmp', dir=folder)
        temporaries = [osp.join(staging, osp.basename(output)) for output in outputs]
        yield temporaries
        for tmp, output in reversed(list(zip(temporaries, outputs, strict=True))):
            if osp.isdir(tmp):  # a folder cannot replace another in one step: the old one goes first
                if osp.isdir(output):
                    shutil.rmtree(output)
                os.rename(tmp, output)
            else:
                os.chmod(tmp, _file_mode())
                os.replace(tmp, output)
    except OSError as err:
        raise _cannot_write(outputs[0], err) from None
    finally:
        if staging is not None and osp.exists(staging):
            shutil.rmtree(staging)


def remove_orphaned_temporaries(folder: str) -> list[str]:
    """Delete the temporaries an interrupted staged_file or staged_outputs left in `folder`; returns their names."""
    if not osp.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if _TEMPORARY.match(name):
            if osp.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            removed.append(name)
    return removed
