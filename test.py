"""Evaluate a checkpoint on the datasets of a YAML: python test.py -opt configs/test/ETDS_M4C32_x4.yml"""

import runpy
from os import path as osp

ROOT = osp.dirname(osp.abspath(__file__))


def main() -> None:
    # arguments and the option file are checked before torch and basicsr load (core/cli.py is torch-free)
    cli = runpy.run_path(osp.join(ROOT, 'core', 'cli.py'))
    args = cli['run_cli'](lambda: cli['parse_option_args'](is_train=False))

    import core  # noqa: F401  (registers our archs, models and datasets into basicsr)
    from core.engine import evaluate_pipeline
    from core.errors import run_cli

    run_cli(lambda: evaluate_pipeline(ROOT, args=args))


if __name__ == '__main__':
    main()
