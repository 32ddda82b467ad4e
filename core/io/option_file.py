"""The option file as a checked dict: YAML errors with their line, `--force_yml` overrides that keep each type.

Standard library and PyYAML only, so train.py and test.py answer a bad file before torch loads.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Sequence
from os import path as osp
from typing import Any

import yaml

from core.errors import UserError
from core.io.upstream_options import translate_upstream


def read_options(path: str, overrides: Sequence[str], translations: list[str] | None = None) -> dict:
    """The option file as a dict with the `--force_yml` overrides applied, or a one-line error naming the fix.

    A file in the ETDS authors' dialect is translated first (core.io.upstream_options); `translations` receives one
    line per change.
    """
    if not osp.isfile(path):
        raise UserError(f'option file {path} does not exist; pass an existing YAML with -opt')
    try:
        with open(path, encoding='utf-8') as handle:
            options = yaml.safe_load(handle)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f'{path}:{mark.line + 1}:{mark.column + 1}' if mark else path
        raise UserError(f'{where}: YAML syntax error ({err.problem or err.context}); fix the file there') from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f'{path} is not a readable YAML file ({err}); compare it with configs/') from None
    if not isinstance(options, dict):
        raise UserError(f'{path} holds a {type(options).__name__}, not a mapping of options; compare it with configs/')
    said = translate_upstream(options, path)
    if translations is not None:
        translations.extend(said)
    for entry in overrides:
        apply_override(options, entry)
    return options


def apply_override(options: dict, entry: str) -> None:
    """Set one `a:b:c=value` in place; the key must exist and the value must have its type."""
    if '=' not in entry:
        raise UserError(f"--force_yml '{entry}' has no '='; write KEY:PATH=VALUE, e.g. train:total_iter=1000")
    keys_text, value_text = (part.strip() for part in entry.split('=', 1))
    keys = keys_text.split(':')
    node: Any = options
    for depth, key in enumerate(keys):
        where = ':'.join(keys[:depth]) or 'the top level'
        if not isinstance(node, dict):
            raise UserError(f"--force_yml {keys_text}: {where} is a value, not a section; check the key path")
        if key not in node:
            close = difflib.get_close_matches(key, [str(k) for k in node], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; it has: {', '.join(map(str, node))}"
            raise UserError(f"--force_yml {keys_text}: '{key}' is not in {where}{hint}")
        if depth < len(keys) - 1:
            node = node[key]
    old = node[keys[-1]]
    try:
        new = yaml.safe_load(value_text) if value_text else None
    except yaml.YAMLError:
        new = value_text
    if isinstance(old, float) and isinstance(new, str):
        with contextlib.suppress(ValueError):
            new = float(new)  # YAML 1.1 reads 1e-3 as text; a learning rate is written that way
    node[keys[-1]] = _typed_like(old, new, keys_text, value_text)


def _typed_like(old: Any, new: Any, key: str, text: str) -> Any:
    """The new value if it has the old one's type (an int where a float was is fine), else a one-line error."""
    if old is None or new is None:
        return new
    if isinstance(old, dict):
        raise UserError(f'--force_yml {key}={text}: {key} is a section; override its keys one by one')
    if isinstance(old, bool) or isinstance(new, bool):
        if isinstance(old, bool) and isinstance(new, bool):
            return new
    elif isinstance(old, int) and isinstance(new, int):
        return new
    elif isinstance(old, float) and isinstance(new, (int, float)):
        return float(new)
    elif isinstance(old, str):
        return new if isinstance(new, str) else text
    elif isinstance(old, list) and isinstance(new, list):
        return new
    examples = {bool: 'true or false', int: 'a whole number such as 1000', float: 'a number such as 0.0005',
                list: 'a list such as [1, 2]'}
    expected = examples.get(type(old), type(old).__name__)
    raise UserError(f"--force_yml {key}={text}: {key} takes {expected} (it is {old!r} in the YAML)")
