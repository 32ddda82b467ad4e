"""Checks on the paths a command reads and writes, made before any work (standard library only)."""

from __future__ import annotations

import os
from os import path as osp

from core.errors import UserError


def nearest_existing(path: str) -> str:
    """The path itself if it exists, else its nearest ancestor that does (where a new output will be made)."""
    existing = osp.abspath(path)
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    return existing


def check_output_path(output: str, flag: str = '--output') -> None:
    """The output's folder must be (or become) a writable folder; say so before any work is done."""
    existing = nearest_existing(osp.dirname(osp.abspath(output)))
    if not osp.isdir(existing):
        raise UserError(f'{flag} {output}: {existing} is a file, not a folder; choose another output path')
    if osp.isdir(output):
        raise UserError(f'{flag} {output} is a folder; give a file name')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f'{flag} {output}: the folder {existing} is not writable; choose a writable folder')


def refuse_overwriting_input(input_path: str, output_path: str) -> None:
    """Tools that write a new checkpoint never replace the one they read."""
    if osp.exists(output_path) and osp.exists(input_path) and osp.samefile(input_path, output_path):
        raise UserError(f'--output {output_path} is the input file; choose another output path')


def check_input_file(path: str, flag: str) -> None:
    if not osp.isfile(path):
        raise UserError(f'{flag} {path} does not exist; check the path')
