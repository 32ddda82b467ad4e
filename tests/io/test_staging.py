"""Outputs of several files, or a folder, appear together and whole, or not at all."""

import os

import pytest

from core.errors import UserError
from core.io.formats import file_backend, ncnn_app_name, weights_file
from core.io.staging import remove_orphaned_temporaries, staged_outputs


def test_two_files_appear_together_and_replace_the_old_pair(tmp_path):
    param, weights = str(tmp_path / 'm.param'), str(tmp_path / 'm.bin')
    for text in ('old', 'new'):
        with staged_outputs([param, weights]) as (tmp_param, tmp_weights):
            assert not os.path.exists(param) or open(param).read() == 'old'  # the old pair stays until the end
            for path in (tmp_param, tmp_weights):
                with open(path, 'w') as handle:
                    handle.write(text)
    assert sorted(os.listdir(tmp_path)) == ['m.bin', 'm.param']
    assert open(param).read() == open(weights).read() == 'new'


def test_a_failure_leaves_neither_file_nor_staging_folder(tmp_path):
    with pytest.raises(RuntimeError), staged_outputs([str(tmp_path / 'm.xml'), str(tmp_path / 'm.bin')]) as paths:
        open(paths[1], 'w').close()
        raise RuntimeError('the check failed')
    assert os.listdir(tmp_path) == []


def test_a_folder_output_replaces_the_old_folder(tmp_path):
    package = tmp_path / 'm.mlpackage'
    package.mkdir()
    (package / 'stale').write_text('x')
    with staged_outputs([str(package)]) as (tmp,):
        os.makedirs(os.path.join(tmp, 'Data'))
    assert sorted(os.listdir(package)) == ['Data']


def test_an_unwritable_folder_is_one_line(tmp_path):
    (tmp_path / 'ro').mkdir(mode=0o500)
    if os.access(tmp_path / 'ro', os.W_OK):
        pytest.skip('running as a user who can write anywhere')
    with pytest.raises(UserError, match='cannot write'), staged_outputs([str(tmp_path / 'ro' / 'm.param')]):
        pass


def test_an_interrupted_staging_folder_is_an_orphan(tmp_path):
    (tmp_path / '.m.k2j4h6g8.tmp').mkdir()
    (tmp_path / '.m.k2j4h6g8.tmp' / 'm.param').write_text('x')
    (tmp_path / 'keep').mkdir()
    assert remove_orphaned_temporaries(str(tmp_path)) == ['.m.k2j4h6g8.tmp']
    assert os.listdir(tmp_path) == ['keep']


def test_model_files_name_their_runtime_and_weights():
    assert [file_backend(p) for p in ('a.param', 'a.PTE', 'a.xml', 'a.mlpackage', 'a.pth')] == [
        'ncnn', 'executorch', 'openvino', 'coreml', 'torch']
    assert (weights_file('d/m.param'), weights_file('d/m.xml'), weights_file('m.onnx')) == ('d/m.bin', 'd/m.bin', None)
    assert ncnn_app_name('models/etds.param', 4) == 'models/etds-x4.param'
    assert ncnn_app_name('models/etds-x2.param', 2) == 'models/etds-x2.param'
