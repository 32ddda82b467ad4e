"""docs/options.md is what core/training/option_keys.yaml gives, and every key there is read where it says."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO
from core.training.option_keys import OPTION_KEYS


def test_the_reference_is_generated_from_the_keys():
    result = subprocess.run([sys.executable, str(REPO / 'scripts' / 'make_option_reference.py'), '--check'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize('key', OPTION_KEYS, ids=[key.path for key in OPTION_KEYS])
def test_each_key_is_read_where_the_reference_says(key):
    source = (REPO / key.read_by).read_text()
    name = key.path.split(':')[-1]
    assert f"'{name}'" in source, f'{key.read_by} no longer reads {key.path}; update core/training/option_keys.py'


def test_a_key_without_every_field_is_refused(tmp_path):
    from core.training.option_keys import load_option_keys

    (tmp_path / 'keys.yaml').write_text('- {path: train:x, type: int, default: "0", meaning: m}\n')
    with pytest.raises(ValueError, match="'train:x' has fields"):
        load_option_keys(tmp_path / 'keys.yaml')
