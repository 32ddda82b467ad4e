"""torchrun workers that stop in one line when their launcher dies or stops them (standard library only)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time


def watch_launcher(logger: logging.Logger, interval: float = 1.0) -> None:
    """Under torchrun, end this worker in one line when its launcher dies or stops it.

    SIGKILL of the launcher leaves workers training otherwise: when it dies the worker is re-parented,
    which a polling thread notices. When another worker fails, torchrun sends the rest SIGTERM.
    """
    parent = os.getppid()
    rank = os.environ.get('RANK', '?')

    def stop(reason: str) -> None:
        logger.error(f'rank {rank}: {reason}; this worker stops. Restart the job with --auto_resume.')
        sys.stderr.flush()
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                stop(f'the launcher (process {parent}) is gone')

    threading.Thread(target=watch, name='launcher-watch', daemon=True).start()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop('stopped by the launcher (another worker failed?)'))
