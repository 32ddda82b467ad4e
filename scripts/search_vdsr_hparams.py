"""TPE hyper-parameter search for VDSR training with optuna; resumable from its storage file.

python scripts/search_vdsr_hparams.py --train-data datasets/DIV2K/DIV2K_train_HR_sub --trials 50

Each trial trains VDSR briefly (SGD, adjustable clipping, multi-scale 41×41 Y patches) with sampled lr
(log-uniform 0.05–1), momentum (0–1), weight decay {1e-4, 1e-5}, batch {64, 128, 256, 512} and clip θ (0–1),
and reports its final loss (the mean of the last quarter of steps). The study lives in an SQLite file, so
running the command again continues it up to --trials finished trials.
"""

import argparse
import math
import os
import sys
from os import path as osp

import optuna
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import core  # noqa: E402,F401
from core.archs.vdsr_arch import VDSR  # noqa: E402
from core.data.multiscale_y_dataset import MultiScaleYDataset, vdsr_training_patches  # noqa: E402
from core.errors import UserError, run_cli  # noqa: E402
from core.models.vdsr_model import sgd_steps  # noqa: E402


def sample_hparams(trial: optuna.Trial) -> dict:
    return {'lr': trial.suggest_float('lr', 0.05, 1.0, log=True),
            'momentum': trial.suggest_float('momentum', 0.0, 1.0),
            'weight_decay': trial.suggest_categorical('weight_decay', [1e-4, 1e-5]),
            'batch': trial.suggest_categorical('batch', [64, 128, 256, 512]),
            'theta': trial.suggest_float('clip', 0.0, 1.0)}


def short_training(hp: dict, dataset: MultiScaleYDataset, iters: int, widths: list[int], seed: int) -> float:
    """Train a fresh VDSR for `iters` steps; the mean loss of the last quarter (inf if it diverged)."""
    torch.manual_seed(seed)
    net = VDSR(widths=widths).train()
    losses = sgd_steps(net, dataset, iters, hp['batch'], hp['lr'], hp['momentum'], hp['weight_decay'], hp['theta'])
    if not math.isfinite(losses[-1]):
        return math.inf
    tail = losses[-max(1, len(losses) // 4):]
    return sum(tail) / len(tail)


def run_search(train_data: str, storage: str, trials: int, iters: int, widths: list[int], seed: int = 0,
               study_name: str = 'vdsr') -> optuna.Study:
    """Run (or continue) the study until it has `trials` finished trials."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--train-data', required=True, help='folder of HR images')
    parser.add_argument('--storage', default='experiments/vdsr_tpe/study.db', help='SQLite file (resumable)')
    parser.add_argument('--trials', type=int, default=20, help='finished trials wanted in the study')
    parser.add_argument('--iters', type=int, default=200, help='training steps per trial')
    parser.add_argument('--widths', type=int, nargs='+', default=None, help='VDSR hidden widths (default 19 × 64)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    if not osp.isdir(args.train_data):
        raise UserError(f'--train-data {args.train_data} is not a folder of HR images')
    optuna.logging.set_verbosity(optuna.logging.INFO)  # one line per finished trial
    study = run_search(args.train_data, args.storage, args.trials, args.iters, args.widths, args.seed)
    best = study.best_trial
    print(f'best trial #{best.number}: final loss {best.value:.6g} with {best.params}; study in {args.storage}')


if __name__ == '__main__':
    run_cli(main)
