"""Exact resume: training killed with SIGKILL at many points, then resumed, matches the uninterrupted run.

Each run is a process forked from a forkserver that has imported torch and the toolkit once, so a kill
and a resume cost a fork, not a Python start. A run dies by SIGKILL at a chosen point: after an
iteration, inside a checkpoint write (half a file, or none), between the weights and the state, or
half-way through a metrics line.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
from os import path as osp
from pathlib import Path

import pytest
import torch

from conftest import read_metrics, training_opt, write_edsr_pairs, write_yaml
from core.io.checkpoint import load_checkpoint

TOTAL_ITER = 30
KILLED = -signal.SIGKILL


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _install_kill(kill: tuple | None) -> None:
    """Make this process SIGKILL itself at `kill`: ('step', n), ('save', name prefix, 'half' | 'none'),
    or ('metrics', n) (half a line written)."""
    if kill is None:
        return
    from core.io import metrics_log

    what = kill[0]
    if what in ('step', 'metrics'):
        original_write = metrics_log.MetricsLog.write

        def write(self, iteration, *args, **kwargs):
            if what == 'metrics' and iteration == kill[1]:
                with open(self.path, 'a') as handle:
                    handle.write(f'{{"iter": {iteration}, "epoch"')
                _die()
            original_write(self, iteration, *args, **kwargs)
            if what == 'step' and iteration == kill[1]:
                _die()

        metrics_log.MetricsLog.write = write
    elif what == 'save':
        original_save = torch.save

        def save(obj, f, *args, **kwargs):
            if isinstance(f, str) and osp.basename(f).startswith(kill[1]):
                if kill[2] == 'half':
                    buffer = io.BytesIO()
                    original_save(obj, buffer, *args, **kwargs)
                    data = buffer.getvalue()
                    with open(f, 'wb') as handle:
                        handle.write(data[:len(data) // 2])
                _die()
            return original_save(obj, f, *args, **kwargs)

        torch.save = save


def _train(root: str, argv: list[str], kill: tuple | None) -> None:
    torch.set_num_threads(1)  # exactness is promised for the same thread count
    multiprocessing.set_start_method('fork', force=True)  # data workers as a user's run starts them on Linux
    _install_kill(kill)
    from core.training.pipelines import train_pipeline

    train_pipeline(root, argv)


@pytest.fixture(scope='module')
def forkserver():
    context = multiprocessing.get_context('forkserver')
    context.set_forkserver_preload(['core', 'core.training.pipelines'])
    return context


def run(forkserver, root: Path, opt_path: str, kill: tuple | None = None, resume: bool = True) -> int:
    argv = ['-opt', opt_path] + (['--auto_resume'] if resume else [])
    process = forkserver.Process(target=_train, args=(str(root), argv, kill))
    process.start()
    process.join(300)
    assert process.exitcode is not None, 'training hung'
    return process.exitcode


def resume_opt(tmp_path: Path, name: str, workers: int = 0) -> str:
    data_root = tmp_path / 'data'
    if not data_root.is_dir():
        write_edsr_pairs(data_root, 2, [(24 + 2 * i, 26 + 2 * (i % 3)) for i in range(10)])
    opt = training_opt(data_root, name=name, total_iter=TOTAL_ITER)  # 10 images, batch 2: 5 iters per epoch
    opt['train']['fixed_residual_model_iters'] = 7
    opt['logger']['save_checkpoint_freq'] = 4
    opt['datasets']['train']['num_worker_per_gpu'] = workers
    opt['datasets'].pop('val')
    opt.pop('val')
    return write_yaml(tmp_path / f'{name}.yml', opt)


def reference_run(forkserver, tmp_path: Path, workers: int) -> tuple[list[dict], dict]:
    root = tmp_path / f'reference_{workers}'
    assert run(forkserver, root, resume_opt(tmp_path, 'run', workers), resume=False) == 0
    experiment = root / 'experiments' / 'run'
    return read_metrics(str(experiment / 'metrics.jsonl')), load_checkpoint(str(experiment / 'models' /
                                                                                  'net_g_latest.pth'))[0]


def assert_all_files_load(experiment: Path, hidden_allowed: bool = False) -> None:
    """Every checkpoint and state loads; hidden temporaries of a killed save are allowed until the next start."""
    for folder in ('models', 'training_states'):
        for path in (experiment / folder).iterdir():
            if path.name.startswith('.'):
                assert hidden_allowed, f'left behind: {path}'
            elif folder == 'models':
                load_checkpoint(str(path))
            else:
                torch.load(path, weights_only=True)


def complete_metrics(path: Path) -> list[dict]:
    """The whole lines of metrics.jsonl (a kill may have cut the last one)."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            break
    return records


def newest_state(experiment: Path) -> Path:
    return max((experiment / 'training_states').glob('*.state'), key=lambda p: int(p.stem))


@pytest.mark.slow
def test_kills_at_ten_points_then_resume_equals_the_uninterrupted_run(forkserver, tmp_path):
    reference, reference_weights = reference_run(forkserver, tmp_path, workers=0)
    assert [r['iter'] for r in reference] == list(range(1, TOTAL_ITER + 1))
    root, opt_path = tmp_path / 'killed', resume_opt(tmp_path, 'run')
    experiment = root / 'experiments' / 'run'
    kills = [
        ('step', 3),                    # before any checkpoint: starts again
        ('save', '.net_g_4.', 'half'),  # inside the first weights file: an orphaned temporary
        ('step', 6),                    # mid-epoch (batch 1 of 5 of epoch 1): resumes at iteration 4
        ('save', '.8.', 'half'),        # inside a state: 8.state never appears, resumes at 4
        ('step', 11),                   # then 8.state is truncated below: falls back to 4.state
        ('save', '.12.', 'none'),       # between net_g_12.pth and 12.state
        ('metrics', 14),                # half a metrics line
        ('step', 16),                   # right after the checkpoint of iteration 16
        ('save', '.net_g_latest.', 'half'),  # inside the final save: 30.state exists, latest does not
        ('save', '.net_g_latest.', 'none'),  # and once more before writing anything
    ]
    for kill in kills:
        assert run(forkserver, root, opt_path, kill) == KILLED, kill
        assert_all_files_load(experiment, hidden_allowed=True)
        written = complete_metrics(experiment / 'metrics.jsonl')
        assert written == reference[:len(written)], kill  # every run so far logged the uninterrupted losses
        if kill == ('step', 11):
            state = newest_state(experiment)
            assert state.name == '8.state'
            state.write_bytes(state.read_bytes()[:1000])  # a disk that filled up mid-write
        if kill[0] == 'save' and kill[2] == 'half':
            assert [p for p in (experiment / 'models').iterdir() if p.name.startswith('.')] or \
                   [p for p in (experiment / 'training_states').iterdir() if p.name.startswith('.')], kill
    assert run(forkserver, root, opt_path) == 0
    assert_all_files_load(experiment)
    assert read_metrics(str(experiment / 'metrics.jsonl')) == reference
    weights = load_checkpoint(str(experiment / 'models' / 'net_g_latest.pth'))[0]
    assert all(torch.equal(weights[k], reference_weights[k]) for k in reference_weights)
    logs = '\n'.join(p.read_text() for p in experiment.glob('train_run_*.log'))
    assert 'Skipping ' in logs and '8.state' in logs  # the truncated state was passed over, with a warning
    assert 'left by an interrupted save' in logs

    # a finished run is left alone
    before = {p: p.stat().st_mtime_ns for p in experiment.rglob('*')}
    assert run(forkserver, root, opt_path) == 0
    assert {p: p.stat().st_mtime_ns for p in experiment.rglob('*')} == before


@pytest.mark.slow
def test_resume_with_data_workers_is_exact_and_worker_independent(forkserver, tmp_path):
    """Per-sample seeds: 2 workers draw the same crops as none, so both runs and the resumed one agree."""
    reference, _ = reference_run(forkserver, tmp_path, workers=0)
    with_workers, _ = reference_run(forkserver, tmp_path, workers=2)
    assert with_workers == reference
    root, opt_path = tmp_path / 'killed', resume_opt(tmp_path, 'run', workers=2)
    for kill in [('step', 6), ('save', '.12.', 'half'), ('step', 23)]:
        assert run(forkserver, root, opt_path, kill) == KILLED, kill
    assert run(forkserver, root, opt_path) == 0
    assert read_metrics(str(root / 'experiments' / 'run' / 'metrics.jsonl')) == reference


@pytest.mark.slow
def test_a_state_that_is_not_weights_only_is_refused_not_skipped(forkserver, tmp_path):
    root, opt_path = tmp_path / 'run', resume_opt(tmp_path, 'run')
    assert run(forkserver, root, opt_path, ('step', 9), resume=False) == KILLED
    state = newest_state(root / 'experiments' / 'run')
    torch.save({'iter': 8, 'payload': torch.nn.Conv2d(1, 1, 1)}, state)
    from core.errors import UserError
    from core.training.pipelines import train_pipeline

    with pytest.raises(UserError, match=r'8.state is not a weights-only tensor training state \(it pickles torch'):
        train_pipeline(str(root), ['-opt', opt_path, '--auto_resume'])
