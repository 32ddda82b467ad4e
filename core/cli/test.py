"""`python test.py -opt configs/test/ETDS_M4C32_x4.yml`: evaluate a checkpoint on the datasets of a YAML."""

from __future__ import annotations

from collections.abc import Sequence

from core.cli.pipeline import run_pipeline


def main(root: str, argv: Sequence[str] | None = None) -> None:
    """`root` is the checkout: results go to experiments/results/<name> below it."""
    run_pipeline(root, is_train=False, argv=argv)
