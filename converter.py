"""Convert a training-form checkpoint into its plain deployable form, verified before it is written.

python converter.py --input experiments/ETDS_M4C32_x4/models/net_g_latest.pth --output ETDS_M4C32_x4_plain.pth
"""

from core.cli.convert import main

if __name__ == '__main__':
    main()
