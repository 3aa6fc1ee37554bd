"""Inflating and decoding intake bodies (splitlab.intake.body), without HTTP."""

from __future__ import annotations

import gzip
import json
import os
import tracemalloc
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitlab.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from splitlab.intake.body import Inflater, parse_json


def inflate(body: bytes, encoding: str, limit: int = 1 << 20, chunk: int = 4096) -> bytes:
    inflater = Inflater(encoding, limit)
    for start in range(0, len(body), chunk):
        inflater.feed(body[start:start + chunk])
    return inflater.finish()


@given(data=st.binary(max_size=5000), chunk=st.integers(1, 700),
       level=st.integers(0, 9))
@settings(max_examples=150, deadline=None)
def test_any_chunking_inflates_to_the_original(data: bytes, chunk: int, level: int) -> None:
    assert inflate(gzip.compress(data, level), "gzip", chunk=chunk) == data
    assert inflate(zlib.compress(data, level), "deflate", chunk=chunk) == data
    raw = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert inflate(raw.compress(data) + raw.flush(), "deflate", chunk=chunk) == data
    assert inflate(data, "identity", chunk=chunk) == data


def test_a_bomb_costs_at_most_the_limit_in_memory() -> None:
    limit = 1 << 20
    bomb = gzip.compress(b"\0" * (200 << 20), 9)  # 200 MiB of zeros in about 200 KB
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLargeError, match="once inflated"):
            inflate(bomb, "gzip", limit=limit, chunk=65536)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit


def test_limits_apply_to_the_sent_bytes_too() -> None:
    noise = os.urandom(3000)  # does not compress: gzip makes it a little larger
    with pytest.raises(PayloadTooLargeError):
        inflate(gzip.compress(noise), "gzip", limit=3000)
    assert inflate(gzip.compress(noise), "gzip", limit=3100) == noise
    with pytest.raises(PayloadTooLargeError):
        inflate(noise, "identity", limit=2999)


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, deflate", "x-gzip"])
def test_unknown_encodings_are_refused_before_reading(encoding: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="gzip, deflate or identity"):
        Inflater(encoding, 100)


def test_empty_and_absent_encodings_are_identity() -> None:
    assert Inflater("", 10).encoding == "identity"
    assert Inflater(" Identity ", 10).encoding == "identity"


@pytest.mark.parametrize("body", [b"x", b"\x1f", b"[1,2,3]", gzip.compress(b"[]")[:-1],
                                  gzip.compress(b"[]") + b"\0"])
def test_broken_gzip_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequestError, match="not valid gzip data"):
        inflate(body, "gzip")


def test_an_empty_compressed_body_is_empty() -> None:
    assert inflate(b"", "gzip") == b""


def unpaired_to_fffd(value: Any) -> Any:
    """The oracle: Python's own json keeps lone surrogates; UTF-16 'replace' maps them."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [unpaired_to_fffd(v) for v in value]
    if isinstance(value, dict):
        return {unpaired_to_fffd(k): unpaired_to_fffd(v) for k, v in value.items()}
    return value


units = st.lists(st.one_of(
    st.integers(0xD800, 0xDFFF).map(lambda u: f"\\u{u:04x}"),
    st.sampled_from(["\\\\", "\\\"", "\\n", "a", "é", "😀", "\\ud83d\\ude00", "\\u0041"])),
    max_size=12).map("".join)


@given(strings=st.lists(units, min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_surrogate_repair_matches_pythons_json_then_utf16(strings: list[str]) -> None:
    text = "[" + ",".join(f'"{s}"' for s in strings) + ',{"' + strings[0] + '": 1}]'
    assert parse_json(text.encode()) == unpaired_to_fffd(json.loads(text))


def test_what_is_not_json_stays_a_bad_request() -> None:
    for body in (b"{", b'["\\ud83d', b'["\\ud83d"', b"\xff", b"[1,]"):
        with pytest.raises(BadRequestError, match="not valid JSON"):
            parse_json(body)
