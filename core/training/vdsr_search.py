"""TPE search of VDSR's training hyper-parameters with optuna; its SQLite storage makes a study resumable.

scripts/search_vdsr_hparams.py is its command line.
"""

from __future__ import annotations

import math
import os
import sys
from os import path as osp
from typing import TYPE_CHECKING

import torch

from core.archs.vdsr_arch import VDSR
from core.data.multiscale_y_dataset import MultiScaleYDataset
from core.training.vdsr_sgd import sgd_steps, vdsr_training_patches

if TYPE_CHECKING:
    import optuna


def sample_hparams(trial: optuna.Trial) -> dict:
    return {'lr': trial.suggest_float('lr', 0.05, 1.0, log=True),
            'momentum': trial.suggest_float('momentum', 0.0, 1.0),
            'weight_decay': trial.suggest_categorical('weight_decay', [1e-4, 1e-5]),
            'batch': trial.suggest_categorical('batch', [64, 128, 256, 512]),
            'theta': trial.suggest_float('clip', 0.0, 1.0)}


def short_training(hp: dict, dataset: MultiScaleYDataset, iters: int, widths: list[int] | None, seed: int) -> float:
    """Train a fresh VDSR for `iters` steps; the mean loss of the last quarter (inf if it diverged)."""
    torch.manual_seed(seed)
    net = VDSR(widths=widths).train()
    losses = sgd_steps(net, dataset, iters, hp['batch'], hp['lr'], hp['momentum'], hp['weight_decay'], hp['theta'])
    if not math.isfinite(losses[-1]):
        return math.inf
    tail = losses[-max(1, len(losses) // 4):]
    return sum(tail) / len(tail)


def run_search(train_data: str, storage: str, trials: int, iters: int, widths: list[int] | None, seed: int = 0,
               study_name: str = 'vdsr') -> optuna.Study:
    """Run (or continue) the study until it has `trials` finished trials."""
    import optuna  # here, so the pruning command does not pay for importing the search library

    dataset = vdsr_training_patches(train_data, 'search')
    os.makedirs(osp.dirname(osp.abspath(storage)), exist_ok=True)
    study = optuna.create_study(study_name=study_name, storage=f'sqlite:///{storage}', direction='minimize',
                                load_if_exists=True)
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    study.sampler = optuna.samplers.TPESampler(seed=seed + done)  # a resumed study must not replay its first draws
    remaining = max(0, trials - done)
    if remaining:
        print(f'{done} trials already in {storage}; running {remaining} more', flush=True)
        study.optimize(lambda t: short_training(sample_hparams(t), dataset, iters, widths, seed + t.number),
                       n_trials=remaining, show_progress_bar=sys.stderr.isatty())
    return study
