"""A training loader that resumes mid-epoch and draws the same augmentations however many workers run.

basicsr's loader restarts an epoch from its first batch after a resume, and seeds each data worker with the
same seed every epoch, so its random crops depend on the worker count and cannot be replayed. Here:
- the sampler keeps basicsr's `EnlargedSampler` order (a permutation fixed by the epoch) but can start at
  any batch of an epoch, and yields `(index, seed)`;
- each sample's seed is derived from (manual_seed, epoch, position in the epoch), and the dataset wrapper
  seeds python's `random`, numpy and torch with it for that sample only (the caller's RNGs are untouched).
So a sample's crop and flips are a function of where it falls in training, in any process, and the
training state only needs the epoch and the batch within it.

`num_worker_per_gpu: auto` gives each training process as many data workers as it has cores, from 2 to 8
(scripts/benchmark_loader.py measured why: docs/training.md, "Feeding the step").
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from basicsr.data import build_dataloader
from basicsr.data.data_sampler import EnlargedSampler
from torch.utils.data import DataLoader, Dataset

from core.errors import UserError

MIN_AUTO_WORKERS, MAX_AUTO_WORKERS = 2, 8  # 8: basicsr's configs' figure per GPU; beyond it, mostly memory

# Libraries whose threads make `fork` unsafe once they are loaded (JAX warns that it "will likely lead to a
# deadlock"); the TFLite export loads them, and the demo trains QAT in the same process afterwards.
THREADED_RUNTIMES = {'jax', 'tensorflow'}


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 32-bit seed for one sample, independent for every (seed, epoch, position)."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1)[0])


class ResumableSampler(EnlargedSampler):
    """basicsr's EnlargedSampler, started at `start_batch` of the epoch, yielding `(index, sample seed)`."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, ratio: int, seed: int,
                 batch_size: int) -> None:
        super().__init__(dataset, num_replicas, rank, ratio)
        self.seed, self.batch_size, self.start_batch = seed, batch_size, 0

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        self.set_epoch(epoch)
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())
        for position in range(self.start_batch * self.batch_size, len(indices)):
            global_position = position * self.num_replicas + self.rank
            yield indices[position], sample_seed(self.seed, self.epoch, global_position)

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start_batch * self.batch_size)


class SeededSamples(Dataset):
    """Wraps a dataset whose augmentations draw from the global RNGs: each item gets its own seed."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # `opt` and the like, as basicsr's code expects of a dataset
        if 'dataset' not in self.__dict__:  # during unpickling in a spawned worker
            raise AttributeError(name)
        return getattr(self.__dict__['dataset'], name)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        python_state, numpy_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed)
            # the CPU generator alone, which fork_rng restores: torch.manual_seed would also queue lazy seeding of
            # every accelerator backend, formatting a stack trace each time (a third of a 480² BMP sample's cost)
            torch.default_generator.manual_seed(seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)


def data_workers(value: Any, processes: int, cores: int | None = None) -> int:
    """`num_worker_per_gpu` as a count: a number, or 'auto' for as many workers as each trainer has cores.

    At least 2 (on 2 cores, 2 workers gave the shortest steps for PNG data and matched 1 for BMP) and at most
    MAX_AUTO_WORKERS: a worker mostly waits for the step, so a core may carry a worker and a compute thread.
    """
    if value == 'auto':
        cores = cores or len(os.sched_getaffinity(0))
        return max(MIN_AUTO_WORKERS, min(MAX_AUTO_WORKERS, cores // max(1, processes)))
    if isinstance(value, str) and value.isdigit():  # --force_yml datasets:train:num_worker_per_gpu=2 over 'auto'
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"datasets:train:num_worker_per_gpu is {value!r}; use a number of data workers (0 loads in "
                        "the training process) or 'auto'")
    return value


def build_resumable_loader(dataset: Dataset, dataset_opt: dict, opt: dict) -> tuple[DataLoader, ResumableSampler]:
    """basicsr's training DataLoader over SeededSamples with a ResumableSampler."""
    num_gpu = opt['num_gpu'] or 0
    processes = opt['world_size'] if opt['dist'] else max(1, num_gpu)
    workers = data_workers(dataset_opt.get('num_worker_per_gpu', 0), processes)
    dataset_opt = dict(dataset_opt, num_worker_per_gpu=workers)  # basicsr multiplies it by num_gpu without dist
    if dataset_opt.get('prefetch_mode') == 'cpu':  # core.data.prefetch receives ahead; basicsr's thread would
        dataset_opt['prefetch_mode'] = None  # load samples beside the step, racing it for the global RNGs
    sampler = ResumableSampler(dataset, opt['world_size'], opt['rank'], dataset_opt.get('dataset_enlarge_ratio', 1),
                               seed=int(opt['manual_seed']), batch_size=dataset_opt['batch_size_per_gpu'])
    loader = build_dataloader(SeededSamples(dataset), dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'],
                              sampler=sampler, seed=opt['manual_seed'])
    # the workers' base seed would otherwise be drawn from the global torch RNG at each epoch's start
    loader.generator = torch.Generator().manual_seed(int(opt['manual_seed']))
    if workers and THREADED_RUNTIMES & set(sys.modules):
        loader.multiprocessing_context = 'forkserver'  # forking a process that runs their threads can deadlock
    return loader, sampler


def rng_states() -> dict:
    """Every RNG the training process draws from, as weights-only-loadable data."""
    numpy_state = np.random.get_state()
    states = {'python': random.getstate(),
              'numpy': {'keys': torch.from_numpy(numpy_state[1].astype(np.int64)), 'pos': int(numpy_state[2]),
                        'has_gauss': int(numpy_state[3]), 'cached_gaussian': float(numpy_state[4])},
              'torch': torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    numpy_state = states['numpy']
    np.random.set_state(('MT19937', numpy_state['keys'].numpy().astype(np.uint32), numpy_state['pos'],
                         numpy_state['has_gauss'], numpy_state['cached_gaussian']))
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])
