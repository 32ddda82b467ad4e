"""Train a network from a YAML: python train.py -opt configs/train/ETDS_M4C32_x4.yml"""

import runpy
from os import path as osp

ROOT = osp.dirname(osp.abspath(__file__))

if __name__ == '__main__':
    # core/cli.py is read without importing the package, so arguments and the YAML are checked before torch loads
    runpy.run_path(osp.join(ROOT, 'core', 'cli.py'))['run_pipeline'](ROOT, is_train=True)
