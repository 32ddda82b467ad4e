"""Evaluate a checkpoint on the datasets of a YAML: python test.py -opt configs/test/ETDS_M4C32_x4.yml"""

from os import path as osp

import core  # noqa: F401  (registers our archs, models and datasets into basicsr)
from core.engine import evaluate_pipeline
from core.errors import run_cli

if __name__ == '__main__':
    run_cli(lambda: evaluate_pipeline(osp.dirname(osp.abspath(__file__))))
