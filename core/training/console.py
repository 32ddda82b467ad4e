"""What a user sees while training: a short header and the progress on the console, everything in the log file.

basicsr logs the full options and the network at INFO; the console filter keeps those in the log file only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from os import path as osp

import torch
from basicsr.utils import get_root_logger

LOG_FORMAT = '%(asctime)s %(levelname)s: %(message)s'
CONSOLE = {'console': True}  # `extra` that puts an INFO line on the console too; the log file gets every line

# basicsr's own INFO lines the user should see as they happen: the training progress and validation results
_CONSOLE_SOURCES = {('logger.py', '__call__'), ('sr_model.py', '_log_validation_metric_values')}


class ConsoleFilter(logging.Filter):
    """The console shows warnings, the short header and progress; the full options dump stays in the log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.levelno >= logging.WARNING or getattr(record, 'console', False)
                or (osp.basename(record.pathname), record.funcName) in _CONSOLE_SOURCES)


class EarlyRecords(logging.Handler):
    """Keeps what is logged before the log file exists (warnings about the previous run), for that file."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def console_logger() -> logging.Logger:
    """basicsr's root logger at INFO, before any file exists (basicsr only sets the level with a file)."""
    logger = get_root_logger(logger_name='basicsr', log_level=logging.INFO)
    logger.setLevel(logging.INFO if rank0() else logging.ERROR)
    for handler in logger.handlers:
        if type(handler) is logging.StreamHandler and not any(isinstance(f, ConsoleFilter) for f in handler.filters):
            handler.addFilter(ConsoleFilter())
    return logger


def rank0() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


@contextlib.contextmanager
def log_file(logger: logging.Logger, path: str) -> Iterator[None]:
    """The file handler basicsr would have added, attached once the output folder exists.

    It is removed afterwards, so a second pipeline in the same process (the demo) logs to its own file.
    """
    if not rank0():
        yield
        return
    handler = logging.FileHandler(path, 'a')
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    for early in [h for h in logger.handlers if isinstance(h, EarlyRecords)]:
        for record in early.records:
            handler.handle(record)
        logger.removeHandler(early)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
