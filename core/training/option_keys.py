"""Every YAML key the toolkit adds to basicsr's options, typed, with its default and meaning.

The keys are data (option_keys.yaml beside this file); this module gives them a type. docs/options.md is generated
from them (`python scripts/make_option_reference.py`), and a test checks that each key is still read where
`read_by` says, so the reference cannot drift from the code. Standard library and PyYAML only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import yaml


@dataclass(frozen=True)
class OptionKey:
    path: str  # where the key sits: `train:qat:start_iter`; `datasets:*` is any dataset section
    type: str
    default: str
    meaning: str
    read_by: str  # the module that reads it (its path below the checkout)


KEYS_FILE = Path(__file__).with_name('option_keys.yaml')


def load_option_keys(path: Path = KEYS_FILE) -> tuple[OptionKey, ...]:
    """The keys of the YAML file, each with exactly OptionKey's fields (a missing or extra field raises)."""
    names = [field.name for field in fields(OptionKey)]
    keys = []
    for entry in yaml.safe_load(path.read_text(encoding='utf-8')):
        if sorted(entry) != sorted(names):
            raise ValueError(f'{path}: {entry.get("path")!r} has fields {sorted(entry)}, expected {names}')
        keys.append(OptionKey(**{name: str(entry[name]) for name in names}))
    return tuple(keys)


OPTION_KEYS = load_option_keys()
