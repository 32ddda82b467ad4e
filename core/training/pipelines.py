"""The thin train/test loops, built from basicsr's parts where basicsr's own pipeline breaks.

Differences from `basicsr.train.train_pipeline` / `basicsr.test.test_pipeline`, and why:
- options are checked (registered types, datasets, model, the network's scale on one sample) before
  anything is written, so bad input leaves no experiment folder behind;
- resume is exact: the state records the data position and every RNG, the loader continues mid-epoch
  (core.data.resumable, core.training.loop), a damaged newest state falls back to the previous one
  (core.training.resume), and a finished run is left alone;
- one writer per experiment (core.training.experiment_lock); torchrun workers stop when their launcher dies
  (core.training.launcher_watch);
- the console shows a short header and the progress; the options and network go to the log file;
- resume works on CPU (core.training.resume) and distributed training on gloo (core.training.distributed);
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
from collections.abc import Sequence
from os import path as osp
from typing import Any

import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model
from basicsr.train import init_tb_loggers
from basicsr.utils import (
    check_resume,
    get_env_info,
    get_time_str,
    make_exp_dirs,
)
from basicsr.utils.misc import mkdir_and_rename
from basicsr.utils.options import copy_opt_file, dict2str

from core.archs.network import first_output
from core.convert.resolver import network_block
from core.errors import UserError
from core.io.staging import remove_orphaned_temporaries
from core.training.console import CONSOLE, EarlyRecords, console_logger, log_file, rank0
from core.training.experiment_lock import experiment_lock, refuse_if_running
from core.training.launcher_watch import watch_launcher
from core.training.loop import Progress, TrainData, build_train_data, resume_progress, train_loop
from core.training.option_checks import check_registered, check_training
from core.training.option_parsing import parse_options
from core.training.resume import ResumePoint, find_resume_point


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
            logger.info(f"step: {' and '.join(switches)} (core/training/models/fast_step.py)", extra=CONSOLE)
    for loader in val_loaders:
        logger.info(f"{loader.dataset.opt['name']}: {len(loader.dataset)} images", extra=CONSOLE)


def train_pipeline(root_path: str, argv: Sequence[str] | None = None, args: Any = None) -> str:
    """Train from a YAML; returns the experiment folder. Bad options fail before anything is written.

    `args` is core.io.run_arguments.parse_option_args's result (train.py parses before torch); else `argv` is parsed.
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


def _resume_point_or_finished(opt: dict, logger: logging.Logger) -> tuple[ResumePoint | None, bool]:
    """Where this run continues, cleaning what an interrupted save left; True when it has nothing left to do."""
    if rank0():
        refuse_if_running(opt['path']['experiments_root'])
        for folder in (opt['path']['models'], opt['path']['training_states']):
            for name in remove_orphaned_temporaries(folder):
                logger.warning(f'Removed {osp.join(folder, name)}, left by an interrupted save.')
    resume = find_resume_point(opt, logger)
    total_iters = int(opt['train']['total_iter'])
    latest = osp.join(opt['path']['models'], 'net_g_latest.pth')
    if resume is not None and resume.state['iter'] >= total_iters and osp.isfile(latest):
        logger.info(f"{opt['name']} already finished at iteration {resume.state['iter']} (of {total_iters}): "
                    f'{latest}. Nothing to do; raise train:total_iter to train longer.', extra=CONSOLE)
        return resume, True
    if resume is not None:
        opt['path']['resume_state'] = resume.path
        with contextlib.redirect_stdout(io.StringIO()):  # basicsr prints the paths it sets
            check_resume(opt, resume.state['iter'])
    return resume, False


def _make_experiment_folders(root_path: str, opt: dict) -> None:
    if opt['auto_resume'] and osp.isdir(opt['path']['experiments_root']):  # killed before its first state
        for key in ('models', 'training_states', 'visualization'):
            os.makedirs(opt['path'][key], exist_ok=True)
        return
    make_exp_dirs(opt)  # basicsr archives an existing folder of that name first
    if opt['logger'].get('use_tb_logger') and 'debug' not in opt['name']:
        mkdir_and_rename(osp.join(root_path, 'tb_logger', opt['name']))


def _train(root_path: str, opt: dict, args: Any, logger: logging.Logger) -> str:
    if opt['dist']:
        watch_launcher(logger)
    experiments_root = opt['path']['experiments_root']
    resume, finished = _resume_point_or_finished(opt, logger)
    if finished:
        return experiments_root
    data = build_train_data(opt)
    val_loaders = _build_eval_loaders(opt, ['val'])
    model = build_model(opt)
    check_output_scale(model, data.loader.dataset[(0, 0)], opt)  # seeded: the global RNGs stay untouched
    if resume is None and rank0():
        _make_experiment_folders(root_path, opt)
    with experiment_lock(experiments_root) if rank0() else contextlib.nullcontext():
        copy_opt_file(args.opt, experiments_root)
        log_path = osp.join(opt['path']['log'], f"train_{opt['name']}_{get_time_str()}.log")
        with log_file(logger, log_path):
            logger.info(get_env_info())
            logger.info(dict2str(opt))
            logger.info(f'Network:\n{model.get_bare_model(model.net_g)}')
            _header(opt, model, data, val_loaders, logger)
            start = Progress(epoch=0, batch=0, iteration=0)
            if resume is not None:
                model.resume_training(resume.state)
                start = resume_progress(resume.state, data.iters_per_epoch, logger)
                logger.info(f'Resuming from {resume.path}: epoch {start.epoch}, batch {start.batch} of '
                            f'{data.iters_per_epoch}, iter {start.iteration}.', extra=CONSOLE)
            logger.info(f'Outputs go to {experiments_root} (log: {log_path})', extra=CONSOLE)
            _train_and_save(opt, model, data, val_loaders, start, logger)
    return experiments_root


def _train_and_save(opt: dict, model, data: TrainData, val_loaders: list, start: Progress,
                    logger: logging.Logger) -> None:
    """The loop to train:total_iter, then the last state, net_g_latest and a last validation."""
    tb_logger = init_tb_loggers(opt)
    start_time = time.time()
    end = train_loop(opt, model, data, val_loaders, tb_logger, start, int(opt['train']['total_iter']))
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
    logger.info(f"Latest model: {osp.join(opt['path']['models'], 'net_g_latest.pth')}", extra=CONSOLE)


def _network_from_checkpoint(opt: dict) -> None:
    """Fill network_g from the checkpoint (core.convert.resolver) when the test YAML leaves it out."""
    if opt.get('network_g'):
        return
    load_path = opt['path'].get('pretrain_network_g')
    if not load_path:
        raise UserError('the test YAML needs network_g, or path:pretrain_network_g pointing at a checkpoint with meta')
    opt['network_g'] = network_block(load_path, opt['path'].get('param_key_g'))


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
