"""Train a network from a YAML: python train.py -opt configs/train/ETDS_M4C32_x4.yml"""

from os import path as osp

from core.cli.train import main

if __name__ == '__main__':
    main(osp.dirname(osp.abspath(__file__)))
