"""The thin train/test loops, built from basicsr's parts where basicsr's own pipeline breaks.

Differences from `basicsr.train.train_pipeline` / `basicsr.test.test_pipeline`, and why:
- options are checked (registered types, datasets, model, the network's scale on one sample) before
  anything is written, so bad input leaves no experiment folder behind;
- resume is exact: the state records the data position and every RNG, the loader continues mid-epoch
  (core.data.resumable), a damaged newest state falls back to the previous one (core.resume), and a
  finished run is left alone;
- one writer per experiment (core.experiment_lock); torchrun workers stop when their launcher dies;
- the console shows a short header and the progress; the options and network go to the log file;
- resume works on CPU and distributed training on gloo (core.compat);
- test outputs go to experiments/results/<name>, and a test YAML may omit network_g when the
  checkpoint carries our meta (a converted model), so users need not repeat its arguments.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import io
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from os import path as osp
from typing import Any

import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model
from basicsr.train import init_tb_loggers
from basicsr.utils import (
    AvgTimer,
    MessageLogger,
    check_resume,
    get_env_info,
    get_root_logger,
    get_time_str,
    make_exp_dirs,
)
from basicsr.utils.misc import mkdir_and_rename
from basicsr.utils.options import copy_opt_file, dict2str
from torch.utils.data import DataLoader, Dataset

from core.archs.esr_arch import model_id_from_path
from core.archs.network import first_output
from core.checkpoint import load_checkpoint
from core.compat import parse_options
from core.data.prefetch import batch_source
from core.data.resumable import ResumableSampler, build_resumable_loader, restore_rng_states
from core.errors import UserError
from core.experiment_lock import experiment_lock, refuse_if_running, watch_launcher
from core.metrics_log import MetricsLog
from core.options import check_registered, check_training
from core.resume import find_resume_point
from core.staging import remove_orphaned_temporaries


@dataclass(frozen=True)
class Progress:
    """Where training is: the epoch, the batches of it already trained on, and the iteration."""

    epoch: int
    batch: int
    iteration: int


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
    logger.setLevel(logging.INFO if _rank0() else logging.ERROR)
    for handler in logger.handlers:
        if type(handler) is logging.StreamHandler and not any(isinstance(f, ConsoleFilter) for f in handler.filters):
            handler.addFilter(ConsoleFilter())
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


@dataclass
class TrainData:
    dataset: Dataset
    loader: DataLoader
    sampler: ResumableSampler
    iters_per_epoch: int


def _build_train_data(opt: dict) -> TrainData:
    dataset_opt = opt['datasets']['train']
    train_set = build_dataset(dataset_opt)
    loader, sampler = build_resumable_loader(train_set, dataset_opt, opt)
    # each process gets ceil(N·ratio / world) samples and drops its last incomplete batch (basicsr assumes ceil)
    iters_per_epoch = sampler.num_samples // dataset_opt['batch_size_per_gpu']
    if iters_per_epoch == 0:
        raise UserError(f"dataset '{dataset_opt['name']}' has {len(train_set)} images, fewer than one batch of "
                        f"{dataset_opt['batch_size_per_gpu']}; raise dataset_enlarge_ratio or lower batch_size_per_gpu")
    return TrainData(train_set, loader, sampler, iters_per_epoch)


def _build_eval_loaders(opt: dict, prefixes: Sequence[str]) -> list:
    loaders = []
    for phase, dataset_opt in opt['datasets'].items():
        if phase.split('_')[0] in prefixes:
            dataset = build_dataset(dataset_opt)
            loaders.append(build_dataloader(dataset, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'],
                                            sampler=None, seed=opt['manual_seed']))
    return loaders


@torch.no_grad()
def check_output_scale(model, sample: dict, opt: dict) -> None:
    """One small forward: the network must turn the data's LR into its HR size (else a tensor-size traceback)."""
    lq, gt = sample['lq'], sample['gt']
    factor = gt.shape[-1] // lq.shape[-1]
    side = min(16, *lq.shape[-2:])
    probe = copy.deepcopy(model.get_bare_model(model.net_g))  # a copy: fake-quant observers must not see it
    probe.eval()  # not chained: torchao's eval() of a QAT graph returns None
    out = first_output(probe(lq[None, :, :side, :side].to(model.device)))
    if tuple(out.shape[-2:]) != (side * factor, side * factor) or out.shape[1] != gt.shape[0]:
        network = opt['network_g']
        raise UserError(f"network_g ({network['type']}) turns a {side}x{side} patch with {lq.shape[0]} channel(s) "
                        f'into {out.shape[-2]}x{out.shape[-1]} with {out.shape[1]}, but the data pairs it with '
                        f'{side * factor}x{side * factor} with {gt.shape[0]} (scale: {opt["scale"]}); make '
                        "network_g's upscale and channels match the data")


def _header(opt: dict, model, data: TrainData | None, val_loaders: list, logger: logging.Logger) -> None:
    """The few lines a user needs before the first iteration; the options and network go to the log file."""
    net = model.get_bare_model(model.net_g)
    network = opt['network_g']
    args = ', '.join(f'{k}={v}' for k, v in network.items() if k != 'type')
    params = sum(p.numel() for p in net.parameters())
    logger.info(f"{opt['name']}: {network['type']}({args}), {params:,} parameters, {opt['model_type']} on "
                f"{model.device.type}, {opt['world_size']} process(es)", extra=CONSOLE)
    if data is not None:
        dataset_opt = opt['datasets']['train']
        logger.info(f"train: {dataset_opt['name']}, {len(data.dataset)} images (x"
                    f"{dataset_opt.get('dataset_enlarge_ratio', 1)}), batch {dataset_opt['batch_size_per_gpu']} per "
                    f"process, {data.loader.num_workers} data worker(s), {data.iters_per_epoch} iters/epoch, "
                    f"{opt['train']['total_iter']} iters", extra=CONSOLE)
        train = opt['train']
        switches = (['compiled'] if train.get('compile') else []) + ([f"{train['amp']} autocast"]
                                                                     if train.get('amp') else [])
        if switches:
            logger.info(f"step: {' and '.join(switches)} (core/models/fast_step.py)", extra=CONSOLE)
    for loader in val_loaders:
        logger.info(f"{loader.dataset.opt['name']}: {len(loader.dataset)} images", extra=CONSOLE)


def train_pipeline(root_path: str, argv: Sequence[str] | None = None, args: Any = None) -> str:
    """Train from a YAML; returns the experiment folder. Bad options fail before anything is written.

    `args` is core.cli.parse_option_args's result (train.py parses before importing torch); else `argv` is parsed.
    """
    opt, args = parse_options(root_path, is_train=True, argv=argv, args=args)
    check_registered(opt)
    if 'train' not in opt['datasets']:
        raise UserError(f'{args.opt} has no datasets:train section; compare it with configs/train/')
    check_training(opt)
    torch.backends.cudnn.benchmark = True
    logger = console_logger()
    early = EarlyRecords()
    logger.addHandler(early)
    try:
        return _train(root_path, opt, args, logger)
    except (torch.distributed.DistError, RuntimeError) as err:
        if not opt['dist'] or not _is_peer_failure(err):
            raise
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else '?'
        raise UserError(f'rank {rank} lost contact with another worker ({type(err).__name__}); the job stops. '
                        'Restart it with --auto_resume') from None
    finally:
        logger.removeHandler(early)


def _is_peer_failure(err: Exception) -> bool:
    """gloo/NCCL errors a dead peer causes in the survivors (a page of tracebacks per rank otherwise)."""
    text = str(err).lower()
    return isinstance(err, torch.distributed.DistError) or any(
        s in text for s in ('gloo', 'connection closed by peer', 'connection reset by peer'))


def _train(root_path: str, opt: dict, args: Any, logger: logging.Logger) -> str:
    if opt['dist']:
        watch_launcher(logger)
    experiments_root = opt['path']['experiments_root']
    total_iters = int(opt['train']['total_iter'])
    if _rank0():
        refuse_if_running(experiments_root)
        for folder in (opt['path']['models'], opt['path']['training_states']):
            for name in remove_orphaned_temporaries(folder):
                logger.warning(f'Removed {osp.join(folder, name)}, left by an interrupted save.')
    resume = find_resume_point(opt, logger)
    latest = osp.join(opt['path']['models'], 'net_g_latest.pth')
    if resume is not None and resume.state['iter'] >= total_iters and osp.isfile(latest):
        logger.info(f"{opt['name']} already finished at iteration {resume.state['iter']} (of {total_iters}): "
                    f'{latest}. Nothing to do; raise train:total_iter to train longer.', extra=CONSOLE)
        return experiments_root
    if resume is not None:
        opt['path']['resume_state'] = resume.path
        with contextlib.redirect_stdout(io.StringIO()):  # basicsr prints the paths it sets
            check_resume(opt, resume.state['iter'])
    data = _build_train_data(opt)
    val_loaders = _build_eval_loaders(opt, ['val'])
    model = build_model(opt)
    check_output_scale(model, data.loader.dataset[(0, 0)], opt)  # seeded: the global RNGs stay untouched

    if resume is None and _rank0():
        if opt['auto_resume'] and osp.isdir(experiments_root):  # killed before its first state: start over here
            for key in ('models', 'training_states', 'visualization'):
                os.makedirs(opt['path'][key], exist_ok=True)
        else:
            make_exp_dirs(opt)  # basicsr archives an existing folder of that name first
            if opt['logger'].get('use_tb_logger') and 'debug' not in opt['name']:
                mkdir_and_rename(osp.join(root_path, 'tb_logger', opt['name']))
    with experiment_lock(experiments_root) if _rank0() else contextlib.nullcontext():
        copy_opt_file(args.opt, experiments_root)
        log_path = osp.join(opt['path']['log'], f"train_{opt['name']}_{get_time_str()}.log")
        with log_file(logger, log_path):
            logger.info(get_env_info())
            logger.info(dict2str(opt))
            logger.info(f'Network:\n{model.get_bare_model(model.net_g)}')
            _header(opt, model, data, val_loaders, logger)
            tb_logger = init_tb_loggers(opt)
            start = Progress(epoch=0, batch=0, iteration=0)
            if resume is not None:
                model.resume_training(resume.state)
                start = resume_progress(resume.state, data.iters_per_epoch, logger)
                logger.info(f'Resuming from {resume.path}: epoch {start.epoch}, batch {start.batch} of '
                            f'{data.iters_per_epoch}, iter {start.iteration}.', extra=CONSOLE)
            logger.info(f'Outputs go to {experiments_root} (log: {log_path})', extra=CONSOLE)
            start_time = time.time()
            end = _train_loop(opt, model, data, val_loaders, tb_logger, start, total_iters)
            logger.info(f'End of training. Time consumed: {datetime.timedelta(seconds=int(time.time() - start_time))}',
                        extra=CONSOLE)
            if end.iteration != start.iteration and end.iteration % opt['logger']['save_checkpoint_freq'] != 0:
                model.save(end.epoch, end.iteration)  # the last state marks the run finished
            model.save(epoch=-1, current_iter=-1)
            if opt.get('val') is not None and end.iteration % opt['val']['val_freq'] != 0:  # else just validated
                for val_loader in val_loaders:
                    model.validation(val_loader, end.iteration, tb_logger, opt['val'].get('save_img', False))
            if tb_logger:
                tb_logger.close()
            logger.info(f'Latest model: {latest}', extra=CONSOLE)
    return experiments_root


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


def _train_loop(opt: dict, model, data: TrainData, val_loaders: list, tb_logger, start: Progress,
                total_iters: int) -> Progress:
    """basicsr's iteration loop (logging, checkpoints, validation), ending exactly at total_iters.

    The model records the data position after every step, so a state saved at any iteration resumes there.
    """
    msg_logger = MessageLogger(opt, start.iteration, tb_logger)
    metrics = MetricsLog(osp.join(opt['path']['experiments_root'], 'metrics.jsonl'), start.iteration, _rank0())
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
    loaders = _build_eval_loaders(opt, ['test', 'val'])
    if not loaders:
        raise UserError('the test YAML has no datasets named test_* or val_*; compare it with configs/test/')
    model = build_model(opt)
    check_output_scale(model, loaders[0].dataset[0], opt)

    make_exp_dirs(opt)
    results = {}
    with log_file(logger, osp.join(results_root, f"test_{opt['name']}_{get_time_str()}.log")):
        logger.info(get_env_info())
        logger.info(dict2str(opt))
        logger.info(f'Network:\n{model.get_bare_model(model.net_g)}')
        logger.info(f"Evaluating {opt['path'].get('pretrain_network_g') or 'an untrained network'}", extra=CONSOLE)
        _header(opt, model, None, loaders, logger)
        opt['val'].setdefault('pbar', True)
        for loader in loaders:
            name = loader.dataset.opt['name']
            model.validation(loader, current_iter=opt['name'], tb_logger=None,
                             save_img=opt['val'].get('save_img', False))
            results[name] = dict(getattr(model, 'metric_results', {}))
        logger.info(f'Results and log are in {results_root}', extra=CONSOLE)
    return results
