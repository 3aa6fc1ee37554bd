"""HTTP content codings a decorated page may travel in: ``gzip``, ``deflate`` and ``br``.

``gzip`` and ``deflate`` use the standard library's zlib. ``br`` needs a Brotli binding
(``brotli`` or ``brotlicffi``), which the SDK does not depend on: where neither is importable,
:func:`codec_for` has no codec for ``br`` and such pages are sent undecorated (and counted).
Codecs stream: a page can be decoded and re-encoded piece by piece as it is sent.
"""

from __future__ import annotations

import importlib
import zlib
from typing import Any, Protocol


class CodingError(Exception):
    """The body is not valid in its declared content coding."""


class Decoder(Protocol):
    """Decodes one response body, piece by piece."""

    def decode(self, data: bytes) -> bytes:
        """The decoded bytes ``data`` completes (``CodingError`` when it is not valid)."""
        ...


class Encoder(Protocol):
    """Encodes one response body, piece by piece."""

    def encode(self, data: bytes) -> bytes:
        """``data`` encoded and flushed, so that the receiver can decode it at once."""
        ...

    def finish(self) -> bytes:
        """The end of the encoded body."""
        ...


class Codec(Protocol):
    """One content coding: makes a decoder and an encoder per response."""

    def decoder(self) -> Decoder:
        """A decoder for one body."""
        ...

    def encoder(self) -> Encoder:
        """An encoder for one body."""
        ...


class _ZlibDecoder:
    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._inner: Any = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None

    def decode(self, data: bytes) -> bytes:
        if self._inner is None:  # "deflate": zlib format as RFC 9110 says, or raw as some send
            if not data:
                return b""
            wrapped = len(data) > 1 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._inner = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            return bytes(self._inner.decompress(data))
        except zlib.error as error:
            raise CodingError(str(error)) from error


class _ZlibEncoder:
    def __init__(self, gzip: bool) -> None:
        self._inner = zlib.compressobj(6, zlib.DEFLATED, (16 if gzip else 0) + zlib.MAX_WBITS)

    def encode(self, data: bytes) -> bytes:
        return self._inner.compress(data) + self._inner.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._inner.flush(zlib.Z_FINISH)


class ZlibCodec:
    """``gzip`` or ``deflate``, from the standard library."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip

    def decoder(self) -> Decoder:
        return _ZlibDecoder(self._gzip)

    def encoder(self) -> Encoder:
        return _ZlibEncoder(self._gzip)


class _BrotliDecoder:
    def __init__(self, module: Any) -> None:
        self._module = module
        self._inner = module.Decompressor()

    def decode(self, data: bytes) -> bytes:
        try:
            return bytes(self._inner.process(data))
        except self._module.error as error:
            raise CodingError(str(error)) from error


class _BrotliEncoder:
    def __init__(self, module: Any) -> None:
        self._inner = module.Compressor()

    def encode(self, data: bytes) -> bytes:
        return bytes(self._inner.process(data)) + bytes(self._inner.flush())

    def finish(self) -> bytes:
        return bytes(self._inner.finish())


class BrotliCodec:
    """``br``, through an importable Brotli binding."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def decoder(self) -> Decoder:
        return _BrotliDecoder(self._module)

    def encoder(self) -> Encoder:
        return _BrotliEncoder(self._module)


def brotli_module() -> Any | None:
    """The first importable Brotli binding (``brotli``, then ``brotlicffi``), or ``None``."""
    for name in ("brotli", "brotlicffi"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


_GZIP, _DEFLATE = ZlibCodec(gzip=True), ZlibCodec(gzip=False)


def codec_for(content_encoding: str, brotli: Any | None = None) -> Codec | None:
    """The codec of a ``Content-Encoding`` value (one coding, any case), or ``None`` when it is
    not one this module can decode and re-encode (``br`` without ``brotli``, several codings,
    unknown ones). ``brotli`` is the Brotli binding to use (see :func:`brotli_module`)."""
    name = content_encoding.strip().lower()
    if name in ("gzip", "x-gzip"):
        return _GZIP
    if name == "deflate":
        return _DEFLATE
    if name == "br" and brotli is not None:
        return BrotliCodec(brotli)
    return None
