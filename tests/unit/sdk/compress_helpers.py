"""Test-only compression, written apart from the SDK's codecs: an ASGI middleware that
compresses every response whole (``deflate`` and ``br``, which Starlette does not ship), and a
reader of the page a test client received."""

from __future__ import annotations

import zlib
from typing import Any

import brotli

from .sdk_helpers import oracle
from .web_helpers import PageReader, read_page

GROUPS = ["control", "treatment"]
HEAD_SCRIPT = '<script>var trap = "<body class=trap>"; /* <body> */</script>'
PAGE = ("<!doctype html><html><head><title>t</title>" + HEAD_SCRIPT + "</head>"
        "<body class='page'>" + "<p>filler text for compression</p>" * 40 + "</body></html>")


def compress(coding: str, data: bytes) -> bytes:
    if coding == "br":
        return bytes(brotli.compress(data))
    return zlib.compress(data) if coding == "deflate" else _gzip(data)


def _gzip(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush()


class Compress:
    """Compresses each whole response in ``coding`` (streams are joined first)."""

    def __init__(self, app: Any, coding: str) -> None:
        self.app, self.coding = app, coding

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        parts: list[bytes] = []

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = compress(self.coding, b"".join(parts))
            headers = [(n, v) for n, v in start["headers"] if n.lower() != b"content-length"]
            headers += [(b"content-encoding", self.coding.encode()),
                        (b"content-length", str(len(body)).encode())]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def check_page(text: str, anonymous: str, experiment: str = "anon-banner-test") -> PageReader:
    """The page is decorated with the group the oracle gives, and the head script is intact."""
    page = read_page(text)
    group = oracle(anonymous, experiment, GROUPS, 1.0)
    assert page.blocks == 1, text[:400]
    assert page.config is not None and page.config["assigned"] == {experiment: group}
    assert f"xlab-experiment-{experiment}-{group}" in page.body_classes
    assert HEAD_SCRIPT in text
    assert text.index("splitlab-config") < text.index("<body class='page")
    return page
