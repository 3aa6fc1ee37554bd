"""A local HTTP server for browser tests of the SDK: the SDK's ES modules (``clients/js/src``)
under ``/splitlab-sdk/``, as ``examples/client_demo`` serves them, and whatever else a test's
handler answers. Served as ``http://localhost:<port>``: a secure context, so WebCrypto is there."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conftest import ROOT

SDK = ROOT / "clients" / "js" / "src"


class SdkHandler(BaseHTTPRequestHandler):
    """Answers ``GET /splitlab-sdk/<module>.js`` (by file name only) and hands every other
    ``GET`` path to :meth:`get` (404 unless a subclass answers it)."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        module = path.removeprefix("/splitlab-sdk/")
        if module != path and "/" not in module and module.endswith(".js") \
                and (SDK / module).is_file():
            self.send((SDK / module).read_bytes(), "text/javascript")
        else:
            self.get(path)

    def get(self, path: str) -> None:
        self.send_error(HTTPStatus.NOT_FOUND)

    def send(self, body: bytes, content_type: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free port for the block; yields ``http://localhost:<port>``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
