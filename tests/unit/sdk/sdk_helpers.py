"""Helpers for the SDK tests: config rows and a stand-in event intake on a local port.

The stand-in speaks the part of the EventGate contract the sender relies on (a JSON array in,
201 out); the real intake is exercised by the end-to-end tests.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from splitlab.sdk import Client, MemoryConfigSource, MemoryEventSender

NOW = datetime(2026, 6, 1, tzinfo=UTC)


class IntakeStub:
    """Records every POSTed batch; answers ``statuses`` in turn, then 201. Also serves
    ``rows`` at ``GET /api/v1/experiments`` (the config API's list form)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.batches: list[list[dict[str, Any]]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/events"

    @property
    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [event for batch in self.batches for event in batch]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with stub.lock:
                    status = stub.statuses.pop(0) if stub.statuses else 201
                    if status == 201:
                        stub.batches.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                body = json.dumps(stub.rows).encode()
                self.send_response(200 if self.path == "/api/v1/experiments" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def row(name: str, unit: str = "mw-user", rate: float = 1.0, **extra: Any) -> dict[str, Any]:
    """A config row with two groups, active from 2026-01-01 to 2027-01-01 unless overridden."""
    base: dict[str, Any] = {
        "name": name,
        "groups": ["control", "treatment"],
        "sample_rate": {"default": rate},
        "user_identifier_type": unit,
        "start": "2026-01-01T00:00:00Z",
        "end": "2027-01-01T00:00:00Z",
        "stream_name": None,
        "schema_id": None,
        "contextual_attributes": [],
        "phase_index": 0,
        "version": 1,
    }
    base.update(extra)
    return base


def oracle(identifier: object, name: str, groups: Sequence[str], rate: float) -> str | None:
    digest = hashlib.sha256((str(identifier) + name).encode("utf-8")).hexdigest()
    scaled = int(digest[:6], 16) / 2**24 * len(groups)
    return groups[math.floor(scaled)] if scaled - math.floor(scaled) < rate else None


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make(rows: list[dict[str, object]], clock: Clock | None = None,
         site: str | None = None) -> tuple[Client, MemoryConfigSource, MemoryEventSender]:
    source, sender = MemoryConfigSource(rows), MemoryEventSender()
    return Client(source, sender, site, clock=clock or Clock()), source, sender
