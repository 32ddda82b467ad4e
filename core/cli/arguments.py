"""Argument types the scripts share (standard library only, so `--help` stays instant)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable


def image_size(minimum: int = 1) -> Callable[[str], tuple[int, int]]:
    """An argparse `type` for HEIGHTxWIDTH ('360x640'), each side at least `minimum` pixels."""

    def parse(text: str) -> tuple[int, int]:
        match = re.fullmatch(r'(\d+)[xX](\d+)', text.strip())
        if match is None:
            raise argparse.ArgumentTypeError(f"'{text}' is not HEIGHTxWIDTH, e.g. 360x640")
        size = int(match[1]), int(match[2])
        if min(size) < minimum:
            raise argparse.ArgumentTypeError(f"'{text}' is too small; use at least {minimum}x{minimum}")
        return size

    return parse
