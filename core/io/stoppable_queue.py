"""Bounded queues between threads that give up when a stop event is set, so a stage that failed (or a Ctrl-C)
never leaves another blocked forever on a full or empty queue (standard library only)."""

from __future__ import annotations

import queue
import threading

_POLL_SECONDS = 0.1


def put_until_stopped(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put `item`; False if `stop` was set first (the item was dropped)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def get_until_stopped(q: queue.Queue, stop: threading.Event, stopped: object) -> object:
    """The next item, or `stopped` once `stop` is set."""
    while not stop.is_set():
        try:
            return q.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            continue
    return stopped
