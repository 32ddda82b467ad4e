"""`python train.py -opt configs/train/ETDS_M4C32_x4.yml`: train a network from a YAML."""

from __future__ import annotations

from collections.abc import Sequence

from core.cli.pipeline import run_pipeline


def main(root: str, argv: Sequence[str] | None = None) -> None:
    """`root` is the checkout: experiments/ and tb_logger/ go below it, as in basicsr."""
    run_pipeline(root, is_train=True, argv=argv)
