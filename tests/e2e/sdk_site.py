"""A local HTTP server for browser tests of the SDK: the SDK's ES modules (``clients/js/src``)
under ``/splitlab-sdk/``, as ``examples/client_demo`` serves them, and whatever else a test's
handler answers. Served as ``http://localhost:<port>``: a secure context, so WebCrypto is there."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from conftest import ROOT, unavailable

SDK = ROOT / "clients" / "js" / "src"
CHROMIUM = Path("/usr/bin/chromium")


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


@dataclass(frozen=True)
class PageRun:
    """What :func:`run_page` saw."""

    value: Any
    """The global the page's script set when done."""
    status: str
    """The text of the page's ``#status`` element."""
    agent: str
    errors: list[str]
    """Console errors and uncaught exceptions."""


def run_page(url: str, done: str, screenshot: Path) -> PageRun:
    """Open ``url`` in headless Chromium (1280×800), wait (up to 60 s) until the page sets the
    global ``done``, read it and ``#status``, and save a full-page screenshot to ``screenshot``.
    Skips (fails under ``SPLITLAB_REQUIRE_SERVICES=1``) without Chromium or Playwright."""
    if not CHROMIUM.exists():
        unavailable("Debian's chromium is not installed (/usr/bin/chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (the dev extra)")
    errors: list[str] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_function(f"window.{done} !== undefined", timeout=60_000)
            run = PageRun(page.evaluate(f"window.{done}"), page.inner_text("#status"),
                          page.evaluate("navigator.userAgent"), errors)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return run
