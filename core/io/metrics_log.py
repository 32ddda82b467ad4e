"""metrics.jsonl: the logged iterations' losses and learning rates, in full precision, one JSON line each.

The text log rounds losses to four digits; this file keeps Python's exact float repr, so two runs (or a
run and its resumed continuation) compare bit for bit. A resumed run first drops the lines after its
resume point, which the interrupted run wrote but whose steps are now done again.
"""

from __future__ import annotations

import json
import os
from os import path as osp

from core.io.staging import staged_file


class MetricsLog:
    def __init__(self, path: str, start_iter: int, enabled: bool = True) -> None:
        self.path, self.enabled = path, enabled
        if enabled and osp.isfile(path):
            self._truncate_after(start_iter)

    def _truncate_after(self, start_iter: int) -> None:
        with open(self.path, encoding='utf-8') as handle:
            kept = [line for line in handle if line.strip() and _complete_iter(line) <= start_iter]
        with staged_file(self.path) as tmp, open(tmp, 'w', encoding='utf-8') as handle:
            handle.writelines(kept)

    def write(self, iteration: int, epoch: int, losses: dict, lrs: list[float]) -> None:
        if not self.enabled:
            return
        record = {'iter': iteration, 'epoch': epoch, 'lr': [float(v) for v in lrs],
                  **{k: float(v) for k, v in losses.items()}}
        with open(self.path, 'a', encoding='utf-8') as handle:
            handle.write(json.dumps(record) + '\n')
            handle.flush()
            os.fsync(handle.fileno())


def _complete_iter(line: str) -> float:
    """The iteration of a line; a line cut short by a kill counts as after any resume point."""
    try:
        return json.loads(line)['iter']
    except (ValueError, KeyError):
        return float('inf')
