"""Receiving the next batch from the data workers while the step computes.

With workers, the training process itself still receives each batch (unpickling it, mapping its shared memory).
A thread does that ahead of the step; on 2 cores it took eager ECBSR's wait with BMP data from 5.9–7.4% to
5.2–5.7% of the step (scripts/benchmark_loader.py). basicsr's PrefetchDataLoader (prefetch_mode: cpu) is such a
thread, but a failing worker leaves its consumer waiting forever and every epoch leaves a thread and its
workers behind; this one passes the failure on and is closed with the epoch.

Only the batches' arrival changes: they come from the same iterator in the same order, and the thread draws
no random numbers (the workers do the sampling), so training and resume stay exact.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from torch.utils.data import DataLoader

from core.io.stoppable_queue import put_until_stopped

_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ThreadPrefetcher:
    """basicsr's CPUPrefetcher interface (`next`, `reset`), with batches received by a thread `depth` ahead."""

    def __init__(self, loader: Iterable, depth: int = 2) -> None:
        self.loader = loader
        self.depth = depth
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(depth)

    def reset(self) -> None:
        """Start an epoch: a fresh iterator of the loader (the sampler's position is already set)."""
        self.close()
        self._stop = threading.Event()
        self._queue = queue.Queue(self.depth)
        self._thread = threading.Thread(target=self._receive, args=(iter(self.loader), self._stop, self._queue),
                                        name='batch-prefetch', daemon=True)
        self._thread.start()

    @staticmethod
    def _receive(batches: Iterator, stop: threading.Event, ready: queue.Queue) -> None:
        try:
            for batch in batches:
                if not put_until_stopped(ready, batch, stop):
                    return
            ready.put(_END)
        except BaseException as error:  # noqa: BLE001  (handed to the training thread, which raises it)
            ready.put(_Failure(error))
        finally:
            del batches  # a multi-process iterator shuts its workers down when dropped

    def next(self) -> Any:
        """The next batch, or None at the end of the epoch (as CPUPrefetcher); a worker's error is raised here."""
        item = self._queue.get()
        if item is _END:
            return None
        if isinstance(item, _Failure):
            raise item.error
        return item

    def close(self) -> None:
        """Stop receiving and let the workers go; batches already received are dropped."""
        if self._thread is None:
            return
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)  # unblock a put; a batch still loading finishes first
            except queue.Empty:
                pass
        self._thread.join()
        self._thread = None


def batch_source(loader: DataLoader, dataset_opt: dict, opt: dict) -> CPUPrefetcher | CUDAPrefetcher | ThreadPrefetcher:
    """What the training loop draws batches from: basicsr's CUDA prefetcher when asked, a receiving thread when
    workers load (prefetch_mode: cpu means this too), else the loader itself."""
    if dataset_opt.get('prefetch_mode') == 'cuda':
        return CUDAPrefetcher(loader, opt)
    if loader.num_workers > 0:
        return ThreadPrefetcher(loader)
    return CPUPrefetcher(loader)
