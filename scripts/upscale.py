"""Upscale your own images with any model the toolkit knows: python scripts/upscale.py --help"""

from core.cli.upscale import main

if __name__ == '__main__':
    main()
