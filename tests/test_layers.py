"""The floors of core/ (pyproject.toml's import-linter contracts) hold, and the contract catches an upward import."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
lint_imports = shutil.which('lint-imports') or pytest.skip('import-linter is not installed (pip install -r '
                                                           'requirements.txt)', allow_module_level=True)


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([lint_imports, '--config', str(root / 'pyproject.toml'), '--no-cache'], cwd=root,
                          capture_output=True, text=True, env={'PYTHONPATH': str(root), 'PATH': '/usr/bin:/bin'},
                          timeout=120)


def test_the_layers_contract_holds():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout[-2000:]
    assert 'Contracts: 2 kept, 0 broken.' in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_contract(tmp_path):
    shutil.copytree(REPO / 'core', tmp_path / 'core', ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy(REPO / 'pyproject.toml', tmp_path)
    network = tmp_path / 'core' / 'archs' / 'network.py'
    network.write_text(network.read_text() + '\n\ndef _upward() -> None:\n    import core.training.pipelines  # noqa\n')
    result = _lint(tmp_path)
    assert result.returncode == 1
    assert 'core.archs is not allowed to import core.training' in result.stdout


def test_no_module_of_core_is_in_an_import_circle():
    graph = grimp.build_graph('core')
    state: dict[str, int] = {}

    def circle_from(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(imported) == 1:
                return path[path.index(imported):] + [imported]
            if imported not in state and (found := circle_from(imported, path)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph.modules):
        if module not in state:
            assert circle_from(module, []) is None


def test_the_top_of_core_is_folders_plus_init_errors_and_plugin():
    files = {p.name for p in (REPO / 'core').iterdir() if p.is_file() and p.suffix == '.py'}
    assert files == {'__init__.py', 'errors.py', 'plugin.py'}
