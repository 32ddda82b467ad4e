"""The body train.py and test.py share: checked arguments first, then torch, basicsr and the pipeline."""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import run_cli
from core.io.run_arguments import parse_option_args


def run_pipeline(root: str, is_train: bool, argv: Sequence[str] | None = None) -> None:
    args = run_cli(lambda: parse_option_args(is_train, argv))

    import core.plugin  # noqa: F401  (registers our archs, models and datasets into basicsr)
    from core.training.pipelines import evaluate_pipeline, train_pipeline

    pipeline = train_pipeline if is_train else evaluate_pipeline
    run_cli(lambda: pipeline(root, args=args))
