"""The bytes of an intake request, turned into events: inflating and JSON decoding, no HTTP.

EventGate (body-parser) reads ``Content-Encoding: gzip`` and ``deflate`` bodies, applies its size
limit to the inflated bytes, and decodes text as UTF-8 with U+FFFD for bytes that are not UTF-8.
Browsers' ``JSON.stringify`` writes a string cut in the middle of an emoji as a lone UTF-16
surrogate escape (``"\\ud83d"``), which EventGate stores. This module does the same, within one
rule: every event of a batch is kept, and a lone surrogate (or a byte that is not UTF-8) becomes
U+FFFD, because the stored form is UTF-8 JSON, which cannot hold a lone surrogate.

The common body (UTF-8 JSON without lone surrogates) is parsed once by orjson; the repair runs
only when orjson refuses a body.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import orjson

from splitlab.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError

ENCODINGS = ("identity", "gzip", "deflate")
# A surrogate escape: a high one with its low partner (kept), or a lone high or low one. Every
# other escape is matched too, so that ``\\\\ud83d`` (an escaped backslash, then text) is
# consumed as ``\\\\`` and never read as an escape.
_ESCAPE = re.compile(
    r"\\(?:(u[dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    r"|u[dD][c-fC-F][0-9a-fA-F]{2}|.)", re.DOTALL)
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_GZIP_MAGIC = b"\x1f\x8b"


def _repair_escape(match: re.Match[str]) -> str:
    high, low = match.group(1), match.group(2)
    if high is not None:
        return match.group(0) if low is not None else "\\ufffd"
    text = match.group(0)
    return "\\ufffd" if text[1] == "u" and len(text) == 6 else text


def repair_text(body: bytes) -> str | None:
    """``body`` as text with every byte that is not UTF-8 and every lone surrogate escape
    replaced by U+FFFD; None when there is nothing to replace (the body is wrong otherwise)."""
    try:
        text = body.decode("utf-8")
        changed = False
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
        changed = True
    if _SURROGATE.search(text):
        repaired = _ESCAPE.sub(_repair_escape, text)
        changed = changed or repaired != text
        text = repaired
    return text if changed else None


def parse_json(body: bytes) -> Any:
    """The JSON value in ``body``; lone surrogates and bytes that are not UTF-8 become U+FFFD.

    Raises :class:`BadRequestError` naming orjson's parse error when the body is not JSON.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        first = error
    repaired = repair_text(body)
    if repaired is not None:
        try:
            return orjson.loads(repaired)
        except orjson.JSONDecodeError:
            pass
    raise BadRequestError(f"the body is not valid JSON: {first}")


class Inflater:
    """Inflates a request body chunk by chunk, never holding more than ``limit`` output bytes.

    ``gzip`` (members may follow each other, as RFC 1952 allows), ``deflate`` (the zlib format
    of RFC 1950, or raw deflate as some clients send it) and ``identity``. Output is asked of
    zlib at most one byte past the limit at a time, so a small compressed body that inflates to
    gigabytes costs at most ``limit`` bytes before :class:`PayloadTooLargeError`.
    """

    def __init__(self, encoding: str, limit: int) -> None:
        name = encoding.strip().lower() or "identity"
        if name not in ENCODINGS:
            raise UnsupportedMediaTypeError(
                f"Content-Encoding {encoding[:50]!r} is not supported; send gzip, deflate or "
                "identity")
        self.encoding = name
        self.limit = limit
        self._size = 0
        self._chunks: list[bytes] = []
        self._zlib: Any = None
        self._head = b""
        self._received = 0

    def _decompressor(self, head: bytes) -> Any:
        if self.encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        zlib_header = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)

    def _keep(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._size > self.limit:
            raise PayloadTooLargeError(
                f"the body is larger than {self.limit} bytes"
                + ("" if self.encoding == "identity" else " once inflated"))
        self._chunks.append(piece)

    def feed(self, chunk: bytes) -> None:
        """Take the next received chunk of the body as sent."""
        if self.encoding == "identity":
            self._keep(chunk)
            return
        self._received += len(chunk)
        if self._received > self.limit:
            raise PayloadTooLargeError(f"the body is larger than {self.limit} bytes")
        if self._zlib is None:
            self._head += chunk
            if len(self._head) < 2:  # the format is told by the first two bytes
                return
            chunk, self._head = self._head, b""
            self._zlib = self._decompressor(chunk)
        data = chunk
        try:
            while True:
                if self._zlib.eof:
                    data = self._next_member(self._zlib.unused_data + data)
                if not data:
                    return
                self._keep(self._zlib.decompress(data, self.limit + 1 - self._size))
                data = self._zlib.unconsumed_tail
        except zlib.error as error:
            raise self._corrupt(str(error)) from None

    def _next_member(self, data: bytes) -> bytes:
        """Start the next gzip member with ``data``; anything else after the end is refused."""
        if not data:
            return data
        if self.encoding != "gzip" or not data.startswith(_GZIP_MAGIC[:len(data)]):
            raise self._corrupt("data after the end of the compressed stream")
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return data

    def _corrupt(self, reason: str) -> BadRequestError:
        return BadRequestError(
            f"the body is not valid {self.encoding} data (Content-Encoding: {self.encoding}): "
            f"{reason}")

    def finish(self) -> bytes:
        """The whole inflated body; :class:`BadRequestError` when the stream is cut short."""
        if self._head:
            raise self._corrupt("the compressed stream ends early")
        if self._zlib is not None:
            try:
                self._keep(self._zlib.flush())
            except zlib.error as error:
                raise self._corrupt(str(error)) from None
            if not self._zlib.eof:
                raise self._corrupt("the compressed stream ends early")
        return b"".join(self._chunks)
