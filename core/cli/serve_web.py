"""Serve the page scripts/export.py --format web wrote, on this computer only, with the headers that let
onnxruntime-web use every core.

python scripts/serve_web.py site/            # then open http://127.0.0.1:8000/
"""

from __future__ import annotations

import argparse
import sys
from os import path as osp

from core.errors import UserError, run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='scripts/serve_web.py', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('folder', help='the folder scripts/export.py --format web wrote')
    parser.add_argument('--port', type=int, default=8000, help='port on 127.0.0.1 (default 8000; 0: any free one)')
    return parser.parse_args(argv)


def serve(args: argparse.Namespace) -> int:
    from core.io.static_server import make_server

    if not osp.isfile(osp.join(args.folder, 'index.html')) or not osp.isfile(osp.join(args.folder, 'model.json')):
        raise UserError(f'{args.folder} is not a site from scripts/export.py --format web (no index.html and '
                        'model.json); export one first')
    try:
        server = make_server(args.folder, args.port)
    except OSError as err:
        raise UserError(f'cannot listen on 127.0.0.1:{args.port} ({err.strerror}); pass another --port') from None
    print(f'serving {osp.abspath(args.folder)} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)',
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.exit(run_cli(lambda: serve(args)))
