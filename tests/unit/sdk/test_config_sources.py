"""Config sources: static, file, and HTTP against a real (stdlib) HTTP server whose behaviour
each test scripts: ETags and 304, failures, slow answers, invalid documents."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from splitlab.errors import ConfigError
from splitlab.sdk import FileConfigSource, HttpConfigSource, StaticConfigSource

ROW: dict[str, Any] = {"name": "sticky-header-2026", "groups": ["control", "treatment"],
                       "sample_rate": {"default": 0.5}, "user_identifier_type": "edge-unique"}
OTHER: dict[str, Any] = {**ROW, "name": "another-experiment"}


class Script:
    """What the test server answers, and what it saw."""

    def __init__(self) -> None:
        self.document: object = [ROW]
        self.etag = '"v1"'
        self.mode = "ok"  # ok | fail | slow | garbage | truncated
        self.requests: list[dict[str, str]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.requests.append(dict(self.headers))
            if script.mode == "fail":
                self.send_response(503)
                self.end_headers()
                return
            if script.mode == "slow":
                time.sleep(1.0)
            if self.headers.get("If-None-Match") == script.etag and script.mode == "ok":
                self.send_response(304)
                self.send_header("ETag", script.etag)
                self.end_headers()
                return
            body = b"{not json" if script.mode == "garbage" else json.dumps(
                script.document).encode()
            zipped = "gzip" in self.headers.get("Accept-Encoding", "")
            payload = gzip.compress(body) if zipped else body
            self.send_response(200)
            self.send_header("ETag", script.etag)
            if zipped:
                self.send_header("Content-Encoding", "gzip")
            truncated = script.mode == "truncated"
            self.send_header("Content-Length", str(len(payload) + (100 if truncated else 0)))
            self.end_headers()
            self.wfile.write(payload)
            if truncated:
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api/v1/experiments", script
    httpd.shutdown()
    httpd.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_static_source_validates_at_once() -> None:
    snapshot = StaticConfigSource([ROW]).load()
    assert [e.name for e in snapshot.experiments] == [ROW["name"]]
    assert snapshot.version and not snapshot.stale
    assert StaticConfigSource({"experiments": [ROW]}).load().version == snapshot.version
    with pytest.raises(ConfigError):
        StaticConfigSource([{**ROW, "groups": []}])
    with pytest.raises(TypeError):
        StaticConfigSource("not rows")  # type: ignore[arg-type]


def test_file_source_rereads_changes_and_keeps_last_good(tmp_path: Path) -> None:
    path = tmp_path / "experiments.json"
    source = FileConfigSource(path)
    missing = source.load()
    assert missing.experiments == () and missing.error
    path.write_text(json.dumps([ROW]))
    first = source.load()
    assert [e.name for e in first.experiments] == [ROW["name"]] and first.error is None
    path.write_text(json.dumps({"experiments": [ROW, OTHER]}))
    second = source.load()
    assert len(second.experiments) == 2 and second.version != first.version
    path.write_text("{broken")
    broken = source.load()
    assert broken.stale and broken.error and len(broken.experiments) == 2


def test_http_etag_and_max_age(server: tuple[str, Script]) -> None:
    url, script = server
    clock = Clock()
    source = HttpConfigSource(url, max_age=10, clock=clock)
    first = source.load()
    assert [e.name for e in first.experiments] == [ROW["name"]] and first.version == '"v1"'
    assert source.load() is first and len(script.requests) == 1  # within max_age: no request
    clock.now += 11
    assert source.load().experiments == first.experiments
    assert script.requests[-1]["If-None-Match"] == '"v1"' and len(script.requests) == 2
    script.document, script.etag = [ROW, OTHER], '"v2"'
    clock.now += 11
    assert len(source.load().experiments) == 2


@pytest.mark.parametrize("mode", ["fail", "garbage", "truncated"])
def test_http_failure_keeps_last_good_and_is_cached(
    server: tuple[str, Script], mode: str
) -> None:
    url, script = server
    clock = Clock()
    source = HttpConfigSource(url, max_age=1, failure_ttl=5, clock=clock)
    good = source.load()
    script.mode = mode
    clock.now += 2
    for _ in range(20):
        snapshot = source.load()
    assert snapshot.stale and snapshot.error and snapshot.experiments == good.experiments
    assert len(script.requests) == 2  # one failure, then remembered: no stampede
    clock.now += 6
    source.load()
    assert len(script.requests) == 3
    script.mode = "ok"
    clock.now += 6
    assert not source.load().stale


def test_http_timeout_is_short(server: tuple[str, Script]) -> None:
    url, script = server
    script.mode = "slow"
    started = time.monotonic()
    snapshot = HttpConfigSource(url, timeout=0.2).load()
    assert time.monotonic() - started < 0.9
    assert snapshot.experiments == () and snapshot.error and "timed out" in snapshot.error


def test_http_cache_file_survives_a_restart_during_an_outage(
    server: tuple[str, Script], tmp_path: Path
) -> None:
    url, script = server
    cache = tmp_path / "cache" / "experiments.json"
    assert len(HttpConfigSource(url, cache_file=cache).load().experiments) == 1
    assert cache.exists()
    script.mode = "fail"
    restarted = HttpConfigSource(url, cache_file=cache).load()
    assert restarted.stale and [e.name for e in restarted.experiments] == [ROW["name"]]
    script.mode = "ok"  # the next fetch after the outage revalidates the cached ETag
    again = HttpConfigSource(url, cache_file=cache)
    assert again.load().error is None
    assert script.requests[-1].get("If-None-Match") == '"v1"'
