"""Evaluate a checkpoint on the datasets of a YAML: python test.py -opt configs/test/ETDS_M4C32_x4.yml"""

from os import path as osp

from core.cli.test import main

if __name__ == '__main__':
    main(osp.dirname(osp.abspath(__file__)))
