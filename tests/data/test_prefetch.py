"""The thread that receives batches ahead of the step: same batches, same order, errors passed on, clean close."""

import threading
import time

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from core.data.prefetch import ThreadPrefetcher
from core.errors import UserError


class Numbers(Dataset):
    def __init__(self, length: int, bad: int | None = None, delay: float = 0.0) -> None:
        self.length, self.bad, self.delay = length, bad, delay

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        if index == self.bad:
            raise UserError(f'sample {index} is unreadable')
        time.sleep(self.delay)
        return torch.tensor([index])


def _drain(prefetcher: ThreadPrefetcher) -> list[list[int]]:
    batches = []
    prefetcher.reset()
    while (batch := prefetcher.next()) is not None:
        batches.append(batch.flatten().tolist())
    return batches


@pytest.mark.parametrize('workers', [0, 1])
def test_batches_arrive_in_the_loaders_order_every_epoch(workers):
    loader = DataLoader(Numbers(10), batch_size=3, num_workers=workers)
    prefetcher = ThreadPrefetcher(loader)
    expected = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert _drain(prefetcher) == expected
    assert _drain(prefetcher) == expected  # reset starts the next epoch
    prefetcher.close()


def test_a_worker_error_is_raised_in_the_training_thread():
    prefetcher = ThreadPrefetcher(DataLoader(Numbers(10, bad=4), batch_size=2, num_workers=1))
    prefetcher.reset()
    assert prefetcher.next().flatten().tolist() == [0, 1]
    assert prefetcher.next().flatten().tolist() == [2, 3]
    with pytest.raises(UserError, match='sample 4 is unreadable'):
        prefetcher.next()
    prefetcher.close()


def test_close_mid_epoch_stops_the_thread_and_a_new_epoch_starts_clean():
    prefetcher = ThreadPrefetcher(DataLoader(Numbers(50, delay=0.01), batch_size=2, num_workers=1), depth=2)
    prefetcher.reset()
    assert prefetcher.next().flatten().tolist() == [0, 1]
    start = time.perf_counter()
    prefetcher.close()
    assert time.perf_counter() - start < 5
    assert not [t for t in threading.enumerate() if t.name == 'batch-prefetch']
    prefetcher.reset()  # after a resume the sampler starts elsewhere: a fresh iterator, nothing stale queued
    assert prefetcher.next().flatten().tolist() == [0, 1]
    prefetcher.close()
    prefetcher.close()  # twice is harmless
