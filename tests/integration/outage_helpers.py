"""Load, measurement and read-back for the sink outage tests (a real ``splitlab serve``).

:class:`Load` posts batches of events with unique ``meta.id`` values from client threads and
records, per request, the time to answer and the status; the ids of batches answered 201 are the
acknowledged ones. :class:`Watch` samples the server's resident memory and spool depth.
``stored_ids`` reads every event id back from a private JetStream or PostgreSQL; ``serve_env`` is
the server's environment for a sink (used by the tests and by ``benchmarks/outage.py``).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
import orjson
import psycopg

from tests.unit.intake.conftest import web_event


def serve_env(sink: str, url: str, deadline: float) -> dict[str, str]:
    """``splitlab serve``'s settings for ``sink`` at ``url`` with a ``deadline`` in seconds."""
    # No results scheduler in the server: its engine (DuckDB, Arrow) would weigh in the RSS that
    # the outage tests and benchmark watch for the intake's own memory.
    env = {"SPLITLAB_EVENTS_SINK": sink, "SPLITLAB_EVENTS_SINK_TIMEOUT": str(deadline),
           "SPLITLAB_RESULTS_INTERVAL": "0"}
    env["SPLITLAB_NATS_URL" if sink == "jetstream" else "SPLITLAB_DATABASE_URL"] = url
    return env


class Load:
    """``threads`` clients posting batches of ``batch`` events to each of ``ports`` in turn."""

    def __init__(self, ports: Sequence[int], threads: int = 4, batch: int = 10) -> None:
        self.ports = list(ports)
        self.batch = batch
        self.acked: list[str] = []
        self.answers: list[tuple[float, int]] = []  # (seconds, status; 0 = no answer)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self, index: int) -> None:
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in self.ports]
        turn = index
        while not self._stop.is_set():
            client = clients[turn % len(clients)]
            turn += 1
            batch = []
            for _ in range(self.batch):
                event = web_event()
                event["meta"]["id"] = str(uuid.uuid4())
                batch.append(event)
            started = time.monotonic()
            try:
                status = client.post("/v1/events", content=orjson.dumps(batch)).status_code
            except httpx.HTTPError:
                status = 0
            self.answers.append((time.monotonic() - started, status))
            if status == 201:
                self.acked.extend(e["meta"]["id"] for e in batch)
        for client in clients:
            client.close()

    def slowest(self) -> float:
        return max(seconds for seconds, _ in self.answers)

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for _, status in self.answers:
            counts[status] = counts.get(status, 0) + 1
        return counts


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its children (the uvicorn workers)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        try:
            status = Path(f"/proc/{one}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) * 1024 if match else 0
    return total


def spool_depth(data_dir: Path, sink: str) -> int:
    """Events in the spool file right now (0 when there is none yet)."""
    path = data_dir / f"spool-{sink}.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


class Watch:
    """Samples the server's RSS and spool depth every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, data_dir: Path, sink: str, interval: float = 0.25) -> None:
        self.samples: list[tuple[int, int]] = []  # (rss bytes, spool depth)
        self.times: list[float] = []  # time.monotonic() of each sample
        self._args = (pid, data_dir, sink, interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        pid, data_dir, sink, interval = self._args
        while not self._stop.is_set():
            now = time.monotonic()
            self.samples.append((rss_bytes(pid), spool_depth(data_dir, sink)))
            self.times.append(now)
            time.sleep(interval)


def wait_until_drained(data_dir: Path, sink: str, seconds: float = 90) -> float:
    """Wait for the spool to empty; returns how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if spool_depth(data_dir, sink) == 0:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"the spool still holds {spool_depth(data_dir, sink)} events")


def stored_ids(sink: str, url: str, table: str = "events",
               stream: str = "SPLITLAB_EVENTS") -> list[str]:
    """Every event id stored in the sink, once per stored copy."""
    if sink == "postgresql":
        with psycopg.connect(url, autocommit=True) as db:
            return [row[0] for row in db.execute(f"SELECT id FROM {table}")]
    return asyncio.run(_jetstream_ids(url, stream))


async def _jetstream_ids(url: str, stream: str) -> list[str]:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    client = await nats.connect(url)
    try:
        js = client.jetstream()
        total = (await js.stream_info(stream)).state.messages
        subscription = await js.pull_subscribe(
            "splitlab.events.>", stream=stream, config=ConsumerConfig(ack_policy=AckPolicy.NONE))
        ids: list[str] = []
        while len(ids) < total:
            for message in await subscription.fetch(min(1000, total - len(ids)), timeout=10):
                ids.append((message.headers or {})["Nats-Msg-Id"])
        return ids
    finally:
        await client.close()
