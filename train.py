"""Train a network from a YAML: python train.py -opt configs/train/ETDS_M4C32_x4.yml"""

from os import path as osp

from core.cli import run_pipeline  # standard library and PyYAML: arguments are checked before torch loads

ROOT = osp.dirname(osp.abspath(__file__))

if __name__ == '__main__':
    run_pipeline(ROOT, is_train=True)
