"""The SDK's own event sender against the real intake: what the SDK sends, the intake stores.

A second implementation on each side of the wire: the SDK builds Test Kitchen-shaped events and
posts them with :class:`HttpEventSender`; a real ``splitlab serve`` validates them against the
shipped 2.1.0 schema and stores them. Every event must be accepted (none on the error stream).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from splitlab.sdk import Client, HttpEventSender, MemoryConfigSource, Performer, SenderOptions
from tests.integration.serve_helpers import free_port, server

pytestmark = pytest.mark.integration


def row(name: str, unit: str) -> dict[str, object]:
    return {"name": name, "groups": ["control", "treatment"], "sample_rate": {"default": 1.0},
            "user_identifier_type": unit, "start": "2026-01-01T00:00:00Z",
            "end": "2027-01-01T00:00:00Z", "stream_name": None, "schema_id": None,
            "contextual_attributes": [], "phase_index": 0, "version": 1}


def test_sdk_events_are_accepted_and_stored(tmp_path: Path) -> None:
    port = free_port()
    with server(tmp_path, port, workers=1):
        sender = HttpEventSender(f"http://127.0.0.1:{port}/v1/events",
                                 SenderOptions(batch_size=4, retries=0))
        client = Client(MemoryConfigSource([row("sdk-intake-user", "mw-user"),
                                            row("sdk-intake-anon", "edge-unique")]),
                        sender, "enwiki", clock=lambda: datetime(2026, 6, 1, tzinfo=UTC))
        manager = client.manager(anonymous_id="G" * 20)
        manager.update_user(12, performer=Performer(is_temp=False))
        for name in ("sdk-intake-user", "sdk-intake-anon"):
            manager.log_enrollment(name, "account_creation")
            handle = manager.get_experiment(name)
            handle.send_exposure()
            handle.send("click", {"action_source": "button"}, {"page": {"title": "Main_Page"}})
        assert sender.flush(10)
        sent = sender.metrics
        sender.close()
    db = sqlite3.connect(tmp_path / "events.sqlite")
    rows = db.execute("SELECT stream, body FROM events").fetchall()
    errors = [orjson.loads(body)["message"] for stream, body in rows
              if stream == "splitlab.error.validation"]
    assert errors == []
    stored = [orjson.loads(body) for _, body in rows]
    assert len(stored) == 6, sent
    assert {e["experiment"]["enrolled"] for e in stored} == {"sdk-intake-user", "sdk-intake-anon"}
    assert all(e["meta"]["dt"] and e["meta"]["id"] for e in stored)
