"""One writer per experiment.

The lock is a POSIX record lock (`lockf`) on `experiments/<name>/train.lock`: the kernel releases it when
its process ends in any way (SIGKILL included), so a stale file never blocks a restart, and the file holds
the owner's PID for the message. Not `flock`: forked data workers would inherit that lock and hold it for
seconds after their trainer was killed. Linux and macOS only (fcntl); skipped where fcntl is missing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from os import path as osp

from core.errors import UserError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; training still works, unguarded
    fcntl = None

LOCK_NAME = 'train.lock'


def _acquire(experiments_root: str) -> int:
    """An open descriptor holding the experiment's lock; a one-line error naming the holder when it is taken."""
    path = osp.join(experiments_root, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # EAGAIN or EACCES: held by another process
        os.close(fd)
        owner = 'another process'
        with contextlib.suppress(OSError), open(path) as handle:
            owner = handle.read().strip() or owner
        raise UserError(f'experiment {osp.basename(experiments_root)} is being trained by {owner}; wait for it to '
                        'finish or stop it, then use --auto_resume (or give this run another name)') from None
    return fd


def refuse_if_running(experiments_root: str) -> None:
    """A second train.py on a running experiment would archive or overwrite its folder: refuse it first."""
    if fcntl is None or not osp.isfile(osp.join(experiments_root, LOCK_NAME)):
        return
    os.close(_acquire(experiments_root))


@contextlib.contextmanager
def experiment_lock(experiments_root: str) -> Iterator[None]:
    """Hold the experiment's lock while training; the file records who holds it."""
    if fcntl is None:
        yield
        return
    fd = _acquire(experiments_root)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f'process {os.getpid()} on {os.uname().nodename}\n'.encode())
        yield
    finally:
        os.close(fd)
