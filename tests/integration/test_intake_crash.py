"""Crash test: a real ``splitlab serve`` under load is SIGKILLed; every 201 survives, once.

Several client threads post batches with unique ``meta.id`` values to a two-worker server on the
embedded SQLite log (one shard per worker) and record the ids of every batch answered 201. The
whole process group is killed with SIGKILL mid-load, the server is started again on the same data
directory, and the shards together must hold each acknowledged id exactly once; the log's reader
(what ``splitlab events export`` reads) must yield each once too.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from splitlab.intake.export import iterate, open_reader
from splitlab.intake.shards import shard_paths
from tests.integration.serve_helpers import free_port, server
from tests.unit.intake.conftest import web_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def load(port: int, acked: list[str], stop: threading.Event) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        while not stop.is_set():
            batch = []
            for _ in range(10):
                event = web_event()
                event["meta"]["id"] = str(uuid.uuid4())
                batch.append(event)
            try:
                response = client.post("/v1/events", content=orjson.dumps(batch))
            except httpx.HTTPError:
                continue
            if response.status_code == 201:
                acked.extend(e["meta"]["id"] for e in batch)


def test_acknowledged_events_survive_sigkill_exactly_once(tmp_path: Path) -> None:
    port = free_port()
    acked: list[str] = []
    stop = threading.Event()
    with server(tmp_path, port) as process:
        threads = [threading.Thread(target=load, args=(port, acked, stop)) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        os.killpg(process.pid, signal.SIGKILL)
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join(10)
    assert len(acked) > 100, "the load reached the server before the kill"
    with server(tmp_path, port):
        after = httpx.post(f"http://127.0.0.1:{port}/v1/events",
                           content=orjson.dumps([web_event()]), timeout=5)
        assert after.status_code == 201
    shards = shard_paths(tmp_path / "events.sqlite")
    assert sorted(shards) == [0, 1], "each worker wrote a shard of its own"
    counts: Counter[str] = Counter()
    for path in shards.values():
        with sqlite3.connect(path) as db:
            counts.update(dict(db.execute(
                "SELECT json_extract(body, '$.meta.id'), count(*) FROM events GROUP BY 1")))
    missing = [i for i in acked if i not in counts]
    assert missing == []
    assert all(counts[i] == 1 for i in acked)
    assert len(set(acked)) == len(acked)
    read = Counter(e.id for e in iterate(open_reader(tmp_path, None), None, None))
    assert all(read[i] == 1 for i in acked)
