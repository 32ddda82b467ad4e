"""torchrun jobs: two launchers as a two-node job, a killed launcher, a dead worker, a second trainer refused."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, assert_one_line_error, free_port, read_metrics, training_opt, write_edsr_pairs, write_yaml
from core.io.checkpoint import load_checkpoint

TORCHRUN = [sys.executable, '-m', 'torch.distributed.run']


@pytest.fixture
def job_opt(tmp_path):
    """A distributed-training YAML (batch 1 per process) with its experiment folder removed afterwards."""
    data_root = write_edsr_pairs(tmp_path / 'data', 2, [(24 + 2 * i, 26 + 2 * (i % 3)) for i in range(10)])
    made = []

    def make(name: str, total_iter: int, save_every: int) -> str:
        opt = training_opt(data_root, name=name, total_iter=total_iter)
        opt['datasets']['train']['batch_size_per_gpu'] = 1
        opt['logger']['save_checkpoint_freq'] = save_every
        opt['datasets'].pop('val')
        opt.pop('val')
        made.append(REPO / 'experiments' / name)
        shutil.rmtree(made[-1], ignore_errors=True)
        return write_yaml(tmp_path / f'{name}.yml', opt)

    yield make
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


def start(command: list[str], tmp_path: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=open(tmp_path / name, 'w'),
                            text=True)


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, 'timed out'
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                fields = Path(f'/proc/{entry}/stat').read_text().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'


@pytest.mark.slow
def test_two_launchers_train_as_two_nodes_save_once_and_resume(tmp_path, job_opt):
    """`--nnodes 2` with two torchrun launchers on this machine: a two-node job in miniature."""
    opt_path = job_opt('two_nodes', total_iter=6, save_every=3)
    experiment = REPO / 'experiments' / 'two_nodes'

    def job(*extra: str) -> None:
        port = free_port()
        launchers = [start(TORCHRUN + ['--nnodes', '2', '--nproc_per_node', '1', '--rdzv_backend', 'c10d',
                                       '--rdzv_endpoint', f'127.0.0.1:{port}', '--rdzv_id', 'job',
                                       str(REPO / 'train.py'), '-opt', opt_path, '--launcher', 'pytorch', *extra],
                           tmp_path, f'node{n}.err') for n in range(2)]
        for n, launcher in enumerate(launchers):
            assert launcher.wait(300) == 0, (tmp_path / f'node{n}.err').read_text()[-3000:]

    job()
    assert sorted(p.name for p in (experiment / 'training_states').iterdir()) == ['3.state', '6.state']
    log = next(experiment.glob('train_two_nodes_*.log')).read_text()
    assert 'world_size: 2' in log
    assert log.count('Saved ') == 3  # net_g_3, net_g_6, net_g_latest: written by rank 0 alone
    assert [r['iter'] for r in read_metrics(str(experiment / 'metrics.jsonl'))] == list(range(1, 7))
    job('--auto_resume', '--force_yml', 'train:total_iter=9')
    assert [r['iter'] for r in read_metrics(str(experiment / 'metrics.jsonl'))] == list(range(1, 10))
    assert load_checkpoint(str(experiment / 'models' / 'net_g_9.pth'))[1]['iter'] == 9
    logs = '\n'.join(p.read_text() for p in experiment.glob('train_two_nodes_*.log'))
    assert '6.state: epoch 1, batch 1 of 5, iter 6.' in logs


def training_job(name: str, tmp_path, job_opt):
    """A two-worker torchrun job of (nearly) endless training, returned once it has logged its first step."""
    opt_path = job_opt(name, total_iter=100000, save_every=100000)
    launcher = start(TORCHRUN + ['--nproc_per_node', '2', '--master_port', str(free_port()), str(REPO / 'train.py'),
                                 '-opt', opt_path, '--launcher', 'pytorch'], tmp_path, 'job.err')
    wait_for(lambda: (REPO / 'experiments' / name / 'metrics.jsonl').is_file())
    return launcher


@pytest.mark.slow
def test_workers_stop_when_their_launcher_is_killed(tmp_path, job_opt):
    launcher = training_job('orphaned', tmp_path, job_opt)
    workers = children(launcher.pid)
    assert len(workers) == 2
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=20)
    stderr = (tmp_path / 'job.err').read_text()
    assert stderr.count('is gone; this worker stops. Restart the job with --auto_resume.') == 2
    assert 'Traceback' not in stderr


@pytest.mark.slow
def test_a_dead_worker_stops_the_job_without_tracebacks_from_the_workers(tmp_path, job_opt):
    launcher = training_job('dead_worker', tmp_path, job_opt)
    os.kill(max(children(launcher.pid)), signal.SIGKILL)
    assert launcher.wait(60) != 0
    stderr = (tmp_path / 'job.err').read_text()
    ours = [line for line in stderr.splitlines() if 'this worker stops' in line or 'lost contact' in line]
    assert ours, stderr[-3000:]  # the survivor says why in one line (torchrun then prints its own summary)
    assert 'File "' + str(REPO / 'core') not in stderr and 'gloo' not in stderr.lower()


@pytest.mark.slow
def test_a_second_trainer_on_a_running_experiment_is_refused(tmp_path, job_opt):
    opt_path = job_opt('running', total_iter=100000, save_every=100000)
    first = start([sys.executable, str(REPO / 'train.py'), '-opt', opt_path], tmp_path, 'first.err')
    try:
        wait_for(lambda: (REPO / 'experiments' / 'running' / 'metrics.jsonl').is_file())
        for extra in ([], ['--auto_resume']):
            second = subprocess.run([sys.executable, str(REPO / 'train.py'), '-opt', opt_path, *extra],
                                    cwd=tmp_path, capture_output=True, text=True, timeout=300)
            assert_one_line_error(second, f'experiment running is being trained by process {first.pid}',
                                  'then use --auto_resume')
        assert not list((REPO / 'experiments').glob('running_archived_*'))
    finally:
        first.kill()
        first.wait()
