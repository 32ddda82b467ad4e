"""Serve an exported web page on 127.0.0.1: python scripts/serve_web.py --help"""

from core.cli.serve_web import main

if __name__ == '__main__':
    main()
