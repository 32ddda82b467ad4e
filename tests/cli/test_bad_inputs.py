"""The bad-input catalogue: each mistake is one `error:` line naming the fix, exit 2, and nothing left behind.

The entry scripts run in this process (runpy, as `python train.py` runs them), so the torch-free argument
phase and the pipeline's checks are both exercised without paying for a new Python per case.
"""

from __future__ import annotations

import copy
import os
import runpy
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from basicsr.archs import build_network

from conftest import REPO, assert_one_line_error, eval_opt, tiny_etds, training_opt, write_edsr_pairs, write_yaml
from core.io.checkpoint import load_checkpoint, save_checkpoint

NAME = 'bad_input_must_not_exist'


@dataclass
class Result:
    returncode: int
    stderr: str


def run_script(script: str, args: list[str], capsys, monkeypatch) -> Result:
    """`python <script> <args>` in this process: its exit status and what it printed to stderr."""
    monkeypatch.setattr(sys, 'argv', [str(REPO / script), *args])
    capsys.readouterr()
    code = 0
    try:
        runpy.run_path(str(REPO / script), run_name='__main__')
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    return Result(code, capsys.readouterr().err)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    for folder in (REPO / 'experiments' / NAME, REPO / 'experiments' / 'results' / NAME):
        shutil.rmtree(folder, ignore_errors=True)
    yield
    for folder in (REPO / 'experiments' / NAME, REPO / 'experiments' / 'results' / NAME):
        assert not folder.exists(), f'{folder} was left behind'


@pytest.fixture
def data_root(tmp_path):
    return write_edsr_pairs(tmp_path / 'data', 2, [(34, 30), (40, 36), (33, 41)])


def base_opt(data_root: Path) -> dict:
    return training_opt(data_root, name=NAME)


def train_case(name: str, tmp_path: Path, data_root: Path) -> tuple[list[str], list[str]]:
    """The arguments of one bad train.py call and the fragments its error line must hold."""
    opt = base_opt(data_root)
    extra: list[str] = []
    if name == 'yaml syntax error':
        path = tmp_path / 'broken.yml'
        path.write_text('name: x\nscale: 2\n  model_type: [IRModel\n')
        return ['-opt', str(path)], [f'{path}:3:13', 'YAML syntax error', 'fix the file there']
    if name == 'wrong type in network_g':
        opt['network_g']['num_block'] = 'four'
        fragments = ["network_g:num_block is 'four' (str) but ETDS takes int there"]
    elif name in ('truncated PNG', 'zero-byte image'):
        bad_root = tmp_path / 'bad_data'
        shutil.copytree(data_root, bad_root)
        opt['datasets']['train']['dataroot'] = str(bad_root)
        if name == 'truncated PNG':
            image = bad_root / 'HR' / 'img1.png'
            image.write_bytes(image.read_bytes()[:len(image.read_bytes()) // 2])
            fragments = [f'{image} is truncated (the PNG file ends early)', 'replace it or remove it']
        else:
            image = bad_root / 'LR_bicubic' / 'X2' / 'img2x2.png'
            image.write_bytes(b'')
            fragments = [f'{image} is empty (0 bytes)']
    elif name == 'upscale differs from scale':
        opt['network_g']['upscale'] = 3
        fragments = ['network_g (ETDS) turns a 8x8 patch', 'into 24x24', 'pairs it with 16x16', '(scale: 2)',
                     "make network_g's upscale and channels match the data"]
    elif name in ('total_iter 0', 'total_iter negative'):
        opt['train']['total_iter'] = 0 if name == 'total_iter 0' else -10
        fragments = [f"train:total_iter is {opt['train']['total_iter']}; set it to the number of iterations"]
    elif name == 'num_gpu without a GPU':
        if torch.cuda.is_available():
            pytest.skip('this machine has a GPU')
        opt['num_gpu'] = 1
        fragments = ['num_gpu: 1 but this machine has no CUDA GPU; set num_gpu: 0']
    elif name == 'force_yml misspelt key':
        extra = ['--force_yml', 'train:totl_iter=4']
        fragments = ["--force_yml train:totl_iter: 'totl_iter' is not in train; did you mean 'total_iter'?"]
    elif name == 'force_yml without =':
        extra = ['--force_yml', 'train:total_iter']
        fragments = ["--force_yml 'train:total_iter' has no '='; write KEY:PATH=VALUE"]
    elif name == 'force_yml wrong type':
        extra = ['--force_yml', 'train:total_iter=1e3']
        fragments = ['--force_yml train:total_iter=1e3: train:total_iter takes a whole number such as 1000']
    else:
        raise AssertionError(name)
    return ['-opt', write_yaml(tmp_path / 'bad.yml', opt), *extra], fragments


TRAIN_CASES = ['yaml syntax error', 'wrong type in network_g', 'truncated PNG', 'zero-byte image',
               'upscale differs from scale', 'total_iter 0', 'total_iter negative', 'num_gpu without a GPU',
               'force_yml misspelt key', 'force_yml without =', 'force_yml wrong type']


@pytest.mark.parametrize('case', TRAIN_CASES)
def test_train_py_bad_input(case, tmp_path, data_root, capsys, monkeypatch):
    args, fragments = train_case(case, tmp_path, data_root)
    assert_one_line_error(run_script('train.py', args, capsys, monkeypatch), *fragments)


def test_force_yml_sets_a_checked_value(tmp_path, data_root):
    from core.io.option_file import read_options

    path = write_yaml(tmp_path / 'ok.yml', base_opt(data_root))
    options = read_options(path, ['train:total_iter=7', 'train:optim_g:lr=1e-3', 'train:ema_decay=0',
                                  'datasets:train:use_rot=false', 'path:pretrain_network_g=x.pth'])
    assert options['train']['total_iter'] == 7 and options['train']['optim_g']['lr'] == 1e-3
    assert options['train']['ema_decay'] == 0.0 and isinstance(options['train']['ema_decay'], float)
    assert options['datasets']['train']['use_rot'] is False and options['path']['pretrain_network_g'] == 'x.pth'


def broken_checkpoint(tmp_path: Path, kind: str) -> Path:
    net = build_network(tiny_etds())
    if kind == 'nan':
        state = net.state_dict()
        state['conv_residual_first.weight'][0, 0, 0, 0] = float('nan')
        save_checkpoint(str(tmp_path / 'nan.pth'), state, {'arch': 'ETDS', 'args': net.init_args})
        return tmp_path / 'nan.pth'
    (tmp_path / 'notes.pth').write_text('these are my notes, not a model\n')
    return tmp_path / 'notes.pth'


def test_test_py_refuses_nan_weights_naming_the_tensor(tmp_path, data_root, capsys, monkeypatch):
    ckpt = broken_checkpoint(tmp_path, 'nan')
    opt = eval_opt(data_root, str(ckpt), tiny_etds(), name=NAME)
    result = run_script('test.py', ['-opt', write_yaml(tmp_path / 't.yml', opt)], capsys, monkeypatch)
    assert_one_line_error(result, f"{ckpt}: 'conv_residual_first.weight' holds NaN values")


def test_test_py_with_a_scale_the_model_does_not_have(tmp_path, capsys, monkeypatch):
    x3_data = write_edsr_pairs(tmp_path / 'x3', 3, [(36, 30)])
    net = build_network(tiny_etds(2))
    save_checkpoint(str(tmp_path / 'x2.pth'), net.state_dict(), {'arch': 'ETDS', 'args': net.init_args})
    opt = eval_opt(x3_data, str(tmp_path / 'x2.pth'), None, name=NAME, scale=3)
    result = run_script('test.py', ['-opt', write_yaml(tmp_path / 't.yml', opt)], capsys, monkeypatch)
    assert_one_line_error(result, 'network_g (ETDS) turns a 10x10 patch', 'into 20x20', 'pairs it with 30x30',
                          '(scale: 3)')


@pytest.mark.parametrize('kind, fragment', [('text', 'is not a readable checkpoint ('),
                                            ('nan', "'conv_residual_first.weight' holds NaN values")])
def test_converter_names_a_broken_input(kind, fragment, tmp_path, capsys, monkeypatch):
    ckpt = broken_checkpoint(tmp_path, kind)
    output = tmp_path / 'out.pth'
    result = run_script('converter.py', ['--input', str(ckpt), '--output', str(output)], capsys, monkeypatch)
    assert_one_line_error(result, fragment, 'truncated, damaged or not a PyTorch/safetensors file' if kind == 'text'
                          else 'use an earlier checkpoint')
    assert 'architecture' not in result.stderr and not output.exists()


def test_converter_output_under_a_file_or_in_a_read_only_folder(tmp_path, capsys, monkeypatch):
    net = build_network(tiny_etds())
    save_checkpoint(str(tmp_path / 'in.pth'), net.state_dict(), {'arch': 'ETDS', 'args': net.init_args})
    (tmp_path / 'a_file').write_text('')
    result = run_script('converter.py', ['--input', str(tmp_path / 'in.pth'), '--output',
                                         str(tmp_path / 'a_file' / 'out.pth')], capsys, monkeypatch)
    assert_one_line_error(result, f"{tmp_path / 'a_file'} is a file, not a folder")
    read_only = tmp_path / 'read_only'
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):  # root may write anywhere: make the check see what a user would
        monkeypatch.setattr(os, 'access', lambda path, mode: Path(path) != read_only)
    result = run_script('converter.py', ['--input', str(tmp_path / 'in.pth'), '--output',
                                         str(read_only / 'out.pth')], capsys, monkeypatch)
    assert_one_line_error(result, f'the folder {read_only} is not writable; choose a writable folder')
    assert list(read_only.iterdir()) == []


def test_a_write_that_fails_is_one_line_and_leaves_no_temporary(tmp_path, monkeypatch):
    from core.errors import UserError
    from core.io.staging import staged_file

    with pytest.raises(UserError, match=r'cannot write .*out.bin: No space left on device'):
        with staged_file(str(tmp_path / 'out.bin')) as tmp:
            Path(tmp).write_bytes(b'partial')
            raise OSError(28, 'No space left on device')
    assert list(tmp_path.iterdir()) == []


def test_safetensors_round_trip_through_converter_and_test_py(tmp_path, data_root, capsys, monkeypatch):
    net = build_network(tiny_etds())
    save_checkpoint(str(tmp_path / 'in.safetensors'), net.state_dict(), {'arch': 'ETDS', 'args': net.init_args})
    from_safetensors = tmp_path / 'plain.pth'
    result = run_script('converter.py', ['--input', str(tmp_path / 'in.safetensors'), '--output',
                                         str(from_safetensors)], capsys, monkeypatch)
    assert result.returncode == 0, result.stderr
    output = tmp_path / 'plain.safetensors'
    result = run_script('converter.py', ['--input', str(tmp_path / 'in.safetensors'), '--output', str(output)],
                        capsys, monkeypatch)
    assert result.returncode == 0, result.stderr
    state, meta = load_checkpoint(str(output))
    assert meta['arch'] == 'ETDSForInference' and output.read_bytes()[8:9] == b'{'
    assert all(torch.equal(state[k], v) for k, v in load_checkpoint(str(from_safetensors))[0].items())
    opt = eval_opt(data_root, str(output), None, name=NAME)
    result = run_script('test.py', ['-opt', write_yaml(tmp_path / 't.yml', opt)], capsys, monkeypatch)
    assert result.returncode == 0, result.stderr
    shutil.rmtree(REPO / 'experiments' / 'results' / NAME)
    result = run_script('converter.py', ['--input', str(tmp_path / 'in.safetensors'), '--output',
                                         str(tmp_path / 'x.pth'), '--format', 'safetensors'], capsys, monkeypatch)
    assert result.returncode == 2 and 'writes a .safetensors file; name --output accordingly' in result.stderr


HEAVY_MODULES = ('torch', 'numpy', 'cv2', 'optuna', 'basicsr')
ENTRY_POINTS = ['train.py', 'test.py', 'converter.py',
                *sorted(f'scripts/{path.name}' for path in (REPO / 'scripts').glob('*.py'))]


def test_image_size_arguments_are_one_parser():
    import argparse

    from core.cli.arguments import image_size

    assert image_size()('360x640') == (360, 640) and image_size(8)(' 8X9 ') == (8, 9)
    for text, minimum, message in (('3y4', 1, "'3y4' is not HEIGHTxWIDTH, e.g. 360x640"),
                                   ('360x', 1, 'is not HEIGHTxWIDTH'),
                                   ('4x4', 8, "'4x4' is too small; use at least 8x8"), ('0x5', 1, 'use at least 1x1')):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            image_size(minimum)(text)


def test_import_core_is_light_and_the_plugin_registers():
    probe = ('import sys\nimport core\n'
             f'print(sorted(set({HEAVY_MODULES!r}) & set(sys.modules)))\n'
             'import core.plugin\nfrom basicsr.utils.registry import ARCH_REGISTRY\n'
             'print(ARCH_REGISTRY.get("ETDS").__module__)\n')
    result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.stdout.split('\n')[:2] == ['[]', 'core.archs.etds_arch'], result.stdout + result.stderr


@pytest.mark.parametrize('entry', ENTRY_POINTS)
def test_every_entry_point_answers_help_without_heavy_imports(entry):
    probe = ('import runpy, sys\n'
             f'sys.argv = [{entry!r}, "--help"]\n'
             'try:\n'
             f'    runpy.run_path({str(REPO / entry)!r}, run_name="__main__")\n'
             'except SystemExit:\n'
             '    pass\n'
             f'print("imported:", sorted(set({HEAVY_MODULES!r}) & set(sys.modules)))\n')
    result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert 'usage:' in result.stdout, result.stderr
    assert result.stdout.strip().endswith('imported: []'), result.stdout.splitlines()[-1]


@pytest.mark.parametrize('args', [['train.py', '-opt', 'nope.yml'], ['test.py', '-opt', 'nope.yml'],
                                  ['converter.py', '--input', 'nope.pth', '--output', 'x.pth'],
                                  ['scripts/prune_vdsr.py', '--input', 'a.pth', '--output', 'b.pth',
                                   '--sparsity', '2']])
def test_argument_errors_do_not_load_torch(args, tmp_path):
    result = subprocess.run([sys.executable, '-X', 'importtime', str(REPO / args[0]), *args[1:]], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    imported = {line.split('|')[-1].strip() for line in result.stderr.splitlines() if line.startswith('import time')}
    assert not set(HEAVY_MODULES) & imported


def test_copy_of_opt_keeps_the_users_file(tmp_path, data_root):
    """--force_yml never edits the user's YAML: basicsr parses a checked copy."""
    path = write_yaml(tmp_path / 'mine.yml', copy.deepcopy(base_opt(data_root)))
    before = Path(path).read_text()
    from core.training.option_parsing import parse_options

    opt, _ = parse_options(str(tmp_path), is_train=True, argv=['-opt', path, '--force_yml', 'train:total_iter=9'])
    assert opt['train']['total_iter'] == 9 and Path(path).read_text() == before
