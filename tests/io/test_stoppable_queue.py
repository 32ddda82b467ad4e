"""A stage blocked on a full or empty queue returns once another stage sets the stop event."""

from __future__ import annotations

import queue
import threading

from core.io.stoppable_queue import get_until_stopped, put_until_stopped


def test_a_blocked_put_and_get_give_up_when_stopped():
    full, empty, stop = queue.Queue(1), queue.Queue(1), threading.Event()
    assert put_until_stopped(full, 'first', stop)
    threading.Timer(0.3, stop.set).start()
    assert put_until_stopped(full, 'second', stop) is False  # returns instead of blocking forever
    assert full.get_nowait() == 'first' and full.empty()
    assert get_until_stopped(empty, stop, 'stopped') == 'stopped'


def test_items_pass_while_running():
    q, stop = queue.Queue(2), threading.Event()
    assert put_until_stopped(q, 1, stop) and put_until_stopped(q, 2, stop)
    assert [get_until_stopped(q, stop, None) for _ in range(2)] == [1, 2]
