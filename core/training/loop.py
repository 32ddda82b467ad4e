"""basicsr's iteration loop with an exact data position: where training is, and how a resume continues there."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from os import path as osp

from basicsr.data import build_dataset
from basicsr.utils import AvgTimer, MessageLogger
from torch.utils.data import DataLoader, Dataset

from core.data.prefetch import batch_source
from core.data.resumable import ResumableSampler, build_resumable_loader, restore_rng_states
from core.errors import UserError
from core.io.metrics_log import MetricsLog
from core.training.console import rank0


@dataclass(frozen=True)
class Progress:
    """Where training is: the epoch, the batches of it already trained on, and the iteration."""

    epoch: int
    batch: int
    iteration: int


@dataclass
class TrainData:
    dataset: Dataset
    loader: DataLoader
    sampler: ResumableSampler
    iters_per_epoch: int


def build_train_data(opt: dict) -> TrainData:
    dataset_opt = opt['datasets']['train']
    train_set = build_dataset(dataset_opt)
    loader, sampler = build_resumable_loader(train_set, dataset_opt, opt)
    # each process gets ceil(N·ratio / world) samples and drops its last incomplete batch (basicsr assumes ceil)
    iters_per_epoch = sampler.num_samples // dataset_opt['batch_size_per_gpu']
    if iters_per_epoch == 0:
        raise UserError(f"dataset '{dataset_opt['name']}' has {len(train_set)} images, fewer than one batch of "
                        f"{dataset_opt['batch_size_per_gpu']}; raise dataset_enlarge_ratio or lower batch_size_per_gpu")
    return TrainData(train_set, loader, sampler, iters_per_epoch)


def resume_progress(state: dict, iters_per_epoch: int, logger: logging.Logger) -> Progress:
    """Where the data stream continues: the recorded epoch and batch, and every RNG as it was."""
    progress = state.get('progress')
    if progress is None:  # a state from before exact resume: continue at the start of the next epoch
        logger.warning(f"{state['iter']}.state records no data position; the data order restarts at an epoch, so "
                       'this resume is not exact.')
        return Progress(epoch=state['epoch'] + 1, batch=0, iteration=state['iter'])
    if progress['iters_per_epoch'] != iters_per_epoch:
        logger.warning(f"the data gave {progress['iters_per_epoch']} iters/epoch when saved and {iters_per_epoch} "
                       'now (data or batch size changed); the data order is not the same as without the stop.')
    restore_rng_states(state['rng'])
    return Progress(epoch=progress['epoch'], batch=progress['batch'], iteration=state['iter'])


def _position(epoch: int, batch: int, data: TrainData, opt: dict) -> dict:
    """What a training state records of the data stream (core.data.resumable makes this enough)."""
    return {'epoch': epoch, 'batch': batch, 'iters_per_epoch': data.iters_per_epoch,
            'data_seed': int(opt['manual_seed'])}


def train_loop(opt: dict, model, data: TrainData, val_loaders: list, tb_logger, start: Progress,
                total_iters: int) -> Progress:
    """basicsr's iteration loop (logging, checkpoints, validation), ending exactly at total_iters.

    The model records the data position after every step, so a state saved at any iteration resumes there.
    """
    msg_logger = MessageLogger(opt, start.iteration, tb_logger)
    metrics = MetricsLog(osp.join(opt['path']['experiments_root'], 'metrics.jsonl'), start.iteration, rank0())
    prefetcher = batch_source(data.loader, opt['datasets']['train'], opt)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(getattr(prefetcher, 'close', lambda: None))  # the receiving thread ends with training
        data_timer, iter_timer = AvgTimer(), AvgTimer()
        epoch, batch, current_iter = start.epoch, start.batch, start.iteration
        model.progress = _position(epoch, batch, data, opt)
        while current_iter < total_iters:
            data.sampler.set_position(epoch, batch)
            prefetcher.reset()
            train_data = prefetcher.next()
            while train_data is not None and current_iter < total_iters:
                data_timer.record()
                current_iter += 1
                batch += 1
                model.update_learning_rate(current_iter, warmup_iter=opt['train'].get('warmup_iter', -1))
                model.feed_data(train_data)
                model.optimize_parameters(current_iter)
                model.progress = _position(epoch, batch, data, opt)
                iter_timer.record()
                if current_iter == start.iteration + 1:
                    msg_logger.reset_start_time()
                if current_iter % opt['logger']['print_freq'] == 0:
                    log_vars = {'epoch': epoch, 'iter': current_iter, 'lrs': model.get_current_learning_rate(),
                                'time': iter_timer.get_avg_time(), 'data_time': data_timer.get_avg_time()}
                    log_vars.update(model.get_current_log())
                    # the share of each step spent waiting for the loader: above a few percent, add data workers
                    log_vars['data_wait'] = log_vars['data_time'] / max(log_vars['time'], 1e-12)
                    msg_logger(log_vars)
                    metrics.write(current_iter, epoch, model.get_current_log(), model.get_current_learning_rate())
                if current_iter % opt['logger']['save_checkpoint_freq'] == 0:
                    model.save(epoch, current_iter)
                if opt.get('val') is not None and current_iter % opt['val']['val_freq'] == 0:
                    for val_loader in val_loaders:
                        model.validation(val_loader, current_iter, tb_logger, opt['val'].get('save_img', False))
                data_timer.start()
                iter_timer.start()
                train_data = prefetcher.next()
            if current_iter < total_iters or batch >= data.iters_per_epoch:
                epoch, batch = epoch + 1, 0
        return Progress(epoch=epoch, batch=batch, iteration=current_iter)
