"""The thin train/test loops, built from basicsr's parts where basicsr's own pipeline breaks.

Differences from `basicsr.train.train_pipeline` / `basicsr.test.test_pipeline`, and why:
- options are checked (registered types, datasets, model) before anything is written, so bad input
  leaves no experiment folder behind;
- resume works on CPU and distributed training on gloo (core.compat);
- test outputs go to experiments/results/<name>, and a test YAML may omit network_g when the
  checkpoint carries our meta (a converted model), so users need not repeat its arguments.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import time
from collections.abc import Iterator, Sequence
from os import path as osp
from typing import Any

import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.models import build_model
from basicsr.train import init_tb_loggers
from basicsr.utils import AvgTimer, MessageLogger, get_env_info, get_root_logger, get_time_str, make_exp_dirs
from basicsr.utils.misc import mkdir_and_rename
from basicsr.utils.options import copy_opt_file, dict2str

from core.archs.esr_arch import model_id_from_path
from core.checkpoint import load_checkpoint
from core.compat import load_resume_state, parse_options
from core.errors import UserError
from core.options import check_registered

LOG_FORMAT = '%(asctime)s %(levelname)s: %(message)s'


def console_logger() -> logging.Logger:
    """basicsr's root logger at INFO, before any file exists (basicsr only sets the level with a file)."""
    logger = get_root_logger(logger_name='basicsr', log_level=logging.INFO)
    logger.setLevel(logging.INFO if _rank0() else logging.ERROR)
    return logger


def _rank0() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


@contextlib.contextmanager
def log_file(logger: logging.Logger, path: str) -> Iterator[None]:
    """The file handler basicsr would have added, attached once the output folder exists.

    It is removed afterwards, so a second pipeline in the same process (the demo) logs to its own file.
    """
    if not _rank0():
        yield
        return
    handler = logging.FileHandler(path, 'w')
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()


def _build_train_loader(opt: dict, logger: logging.Logger) -> tuple:
    dataset_opt = opt['datasets']['train']
    enlarge = dataset_opt.get('dataset_enlarge_ratio', 1)
    train_set = build_dataset(dataset_opt)
    sampler = EnlargedSampler(train_set, opt['world_size'], opt['rank'], enlarge)
    loader = build_dataloader(train_set, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'], sampler=sampler,
                              seed=opt['manual_seed'])
    # each process gets ceil(N·ratio / world) samples and drops its last incomplete batch (basicsr assumes ceil)
    iters_per_epoch = math.ceil(len(train_set) * enlarge / opt['world_size']) // dataset_opt['batch_size_per_gpu']
    if iters_per_epoch == 0:
        raise UserError(f"dataset '{dataset_opt['name']}' has {len(train_set)} images, fewer than one batch of "
                        f"{dataset_opt['batch_size_per_gpu']}; raise dataset_enlarge_ratio or lower batch_size_per_gpu")
    total_iters = int(opt['train']['total_iter'])
    logger.info(f'Training on {len(train_set)} images (x{enlarge}), batch {dataset_opt["batch_size_per_gpu"]} per '
                f'process, {opt["world_size"]} process(es): {iters_per_epoch} iters/epoch, {total_iters} iters.')
    return loader, sampler, total_iters


def _build_eval_loaders(opt: dict, prefixes: Sequence[str], logger: logging.Logger) -> list:
    loaders = []
    for phase, dataset_opt in opt['datasets'].items():
        if phase.split('_')[0] in prefixes:
            dataset = build_dataset(dataset_opt)
            loaders.append(build_dataloader(dataset, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'],
                                            sampler=None, seed=opt['manual_seed']))
            logger.info(f'{dataset_opt["name"]}: {len(dataset)} images')
    return loaders


def train_pipeline(root_path: str, argv: Sequence[str] | None = None, args: Any = None) -> str:
    """Train from a YAML; returns the experiment folder. Bad options fail before anything is written.

    `args` is core.cli.parse_option_args's result (train.py parses before importing torch); else `argv` is parsed.
    """
    opt, args = parse_options(root_path, is_train=True, argv=argv, args=args)
    check_registered(opt)
    if 'train' not in opt['datasets']:
        raise UserError(f'{args.opt} has no datasets:train section; compare it with configs/train/')
    torch.backends.cudnn.benchmark = True
    logger = console_logger()
    resume_state = load_resume_state(opt)
    train_loader, train_sampler, total_iters = _build_train_loader(opt, logger)
    val_loaders = _build_eval_loaders(opt, ['val'], logger)
    model = build_model(opt)

    experiments_root = opt['path']['experiments_root']
    if resume_state is None:
        make_exp_dirs(opt)
        if opt['logger'].get('use_tb_logger') and 'debug' not in opt['name'] and opt['rank'] == 0:
            mkdir_and_rename(osp.join(root_path, 'tb_logger', opt['name']))
    copy_opt_file(args.opt, experiments_root)
    with log_file(logger, osp.join(opt['path']['log'], f"train_{opt['name']}_{get_time_str()}.log")):
        logger.info(get_env_info())
        logger.info(dict2str(opt))
        tb_logger = init_tb_loggers(opt)
        start_epoch, current_iter = 0, 0
        if resume_state:
            model.resume_training(resume_state)
            start_epoch, current_iter = resume_state['epoch'], resume_state['iter']
            logger.info(f'Resuming training from epoch {start_epoch}, iter {current_iter}.')
        logger.info(f'Start training from epoch {start_epoch}, iter {current_iter}; outputs go to {experiments_root}')
        start_time = time.time()
        _, current_iter = _train_loop(opt, model, train_loader, train_sampler, val_loaders, tb_logger,
                                      start_epoch, current_iter, total_iters)
        logger.info(f'End of training. Time consumed: {datetime.timedelta(seconds=int(time.time() - start_time))}')
        model.save(epoch=-1, current_iter=-1)
        if opt.get('val') is not None and current_iter % opt['val']['val_freq'] != 0:  # else just validated
            for val_loader in val_loaders:
                model.validation(val_loader, current_iter, tb_logger, opt['val'].get('save_img', False))
        if tb_logger:
            tb_logger.close()
        logger.info(f"Latest model: {osp.join(opt['path']['models'], 'net_g_latest.pth')}")
    return experiments_root


def _train_loop(opt: dict, model, train_loader, train_sampler, val_loaders: list, tb_logger, start_epoch: int,
                current_iter: int, total_iters: int) -> tuple[int, int]:
    """basicsr's iteration loop (logging, checkpoints, validation), ending exactly at total_iters."""
    msg_logger = MessageLogger(opt, current_iter, tb_logger)
    if opt['datasets']['train'].get('prefetch_mode') == 'cuda':
        prefetcher = CUDAPrefetcher(train_loader, opt)
    else:
        prefetcher = CPUPrefetcher(train_loader)
    data_timer, iter_timer = AvgTimer(), AvgTimer()
    epoch = start_epoch
    while current_iter < total_iters:
        train_sampler.set_epoch(epoch)
        prefetcher.reset()
        train_data = prefetcher.next()
        while train_data is not None and current_iter < total_iters:
            data_timer.record()
            current_iter += 1
            model.update_learning_rate(current_iter, warmup_iter=opt['train'].get('warmup_iter', -1))
            model.feed_data(train_data)
            model.optimize_parameters(current_iter)
            iter_timer.record()
            if current_iter == 1:
                msg_logger.reset_start_time()
            if current_iter % opt['logger']['print_freq'] == 0:
                log_vars = {'epoch': epoch, 'iter': current_iter, 'lrs': model.get_current_learning_rate(),
                            'time': iter_timer.get_avg_time(), 'data_time': data_timer.get_avg_time()}
                log_vars.update(model.get_current_log())
                msg_logger(log_vars)
            if current_iter % opt['logger']['save_checkpoint_freq'] == 0:
                model.save(epoch, current_iter)
            if opt.get('val') is not None and current_iter % opt['val']['val_freq'] == 0:
                for val_loader in val_loaders:
                    model.validation(val_loader, current_iter, tb_logger, opt['val'].get('save_img', False))
            data_timer.start()
            iter_timer.start()
            train_data = prefetcher.next()
        epoch += 1
    return epoch, current_iter


def _network_from_checkpoint(opt: dict) -> None:
    """Fill network_g from the checkpoint's meta when the test YAML leaves it out."""
    if opt.get('network_g'):
        return
    load_path = opt['path'].get('pretrain_network_g')
    if not load_path:
        raise UserError('the test YAML needs network_g, or path:pretrain_network_g pointing at a checkpoint with meta')
    _, meta = load_checkpoint(load_path)
    if meta.get('arch'):
        opt['network_g'] = {'type': meta['arch'], **meta.get('args', {})}
    elif model_id := model_id_from_path(load_path):  # official eSR files are named after their model id
        opt['network_g'] = {'type': 'EdgeSR', 'model_id': model_id}
    else:
        raise UserError(f'{load_path} has no meta; add network_g (type and arguments) to the test YAML')


def _select_datasets(opt: dict, names: Sequence[str]) -> None:
    """Keep only the datasets named on the command line (--datasets), in the YAML's order."""
    available = {d.get('name'): phase for phase, d in opt['datasets'].items()}
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UserError(f"--datasets {' '.join(unknown)} not in the YAML; its datasets are: "
                        + ', '.join(str(n) for n in available))
    keep = {available[n] for n in names}
    opt['datasets'] = {phase: d for phase, d in opt['datasets'].items() if phase in keep}


def evaluate_pipeline(root_path: str, argv: Sequence[str] | None = None,
                      args: Any = None) -> dict[str, dict[str, float]]:
    """Evaluate every test_* / val_* dataset of a YAML; returns {dataset: {metric: value}}."""
    opt, args = parse_options(root_path, is_train=False, argv=argv, args=args)
    if args.datasets:
        _select_datasets(opt, args.datasets)
    _network_from_checkpoint(opt)
    check_registered(opt)
    results_root = osp.join(root_path, 'experiments', 'results', opt['name'])
    opt['path'].update(results_root=results_root, log=results_root,
                       visualization=osp.join(results_root, 'visualization'))
    torch.backends.cudnn.benchmark = True
    logger = console_logger()
    loaders = _build_eval_loaders(opt, ['test', 'val'], logger)
    if not loaders:
        raise UserError('the test YAML has no datasets named test_* or val_*; compare it with configs/test/')
    model = build_model(opt)

    make_exp_dirs(opt)
    results = {}
    with log_file(logger, osp.join(results_root, f"test_{opt['name']}_{get_time_str()}.log")):
        logger.info(get_env_info())
        logger.info(dict2str(opt))
        opt['val'].setdefault('pbar', True)
        for loader in loaders:
            name = loader.dataset.opt['name']
            model.validation(loader, current_iter=opt['name'], tb_logger=None,
                             save_img=opt['val'].get('save_img', False))
            results[name] = dict(getattr(model, 'metric_results', {}))
        logger.info(f'Results and log are in {results_root}')
    return results
