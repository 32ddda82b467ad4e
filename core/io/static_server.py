"""Serve a folder on localhost with the headers a multi-threaded WebAssembly page needs (standard library only).

onnxruntime-web runs on several threads only in a cross-origin-isolated page: the server must send
Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp. Python's http.server
sends neither, and serves .mjs and .wasm with types browsers may refuse.
"""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

ISOLATION_HEADERS = {
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Cache-Control': 'no-cache',  # a re-exported model shows at once
}


class IsolatedHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, '.wasm': 'application/wasm',
                      '.mjs': 'text/javascript', '.js': 'text/javascript', '.onnx': 'application/octet-stream'}

    def end_headers(self) -> None:
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if getattr(self.server, 'quiet', False):
            return
        super().log_message(format, *args)


def make_server(folder: str, port: int = 8000, host: str = '127.0.0.1', quiet: bool = False) -> ThreadingHTTPServer:
    """A server for `folder` bound to host:port (port 0: any free one); call serve_forever() to run it."""
    server = ThreadingHTTPServer((host, port), functools.partial(IsolatedHandler, directory=folder))
    server.quiet = quiet
    return server
