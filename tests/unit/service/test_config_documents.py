"""The read cache: rebuilt on writes, on other processes' writes, and when the clock crosses an
experiment's start or end — never serving a stale active set."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from splitlab.registry.store import Registry
from splitlab.service.config_documents import ChangeSignal, DocumentCache

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
KEY = ("experiment", "config", "mediawiki")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def row(name: str, start: datetime, end: datetime) -> dict[str, object]:
    return {"name": name, "groups": ["control", "treatment"], "sample_rate": 1,
            "user_identifier_type": "session", "start": start.isoformat(), "end": end.isoformat()}


def names(cache: DocumentCache) -> list[str]:
    document = asyncio.run(cache.get(KEY))
    return [r["name"] for r in orjson.loads(document.body)]


def test_the_clock_starts_and_ends_experiments_without_writes(tmp_path: Path) -> None:
    clock = Clock()
    registry = Registry.open(None, tmp_path, clock=clock)
    registry.create("experiment", row("starts-in-an-hour", NOW + timedelta(hours=1),
                                      NOW + timedelta(hours=3)), "test")
    registry.create("experiment", row("running-for-two-hours", NOW - timedelta(hours=1),
                                      NOW + timedelta(hours=2)), "test")
    cache = DocumentCache(registry, ChangeSignal(tmp_path / "signal"))
    assert names(cache) == ["running-for-two-hours"]
    clock.now = NOW + timedelta(hours=1)
    assert names(cache) == ["running-for-two-hours", "starts-in-an-hour"]
    clock.now = NOW + timedelta(hours=2, seconds=1)
    assert names(cache) == ["starts-in-an-hour"]
    clock.now = NOW + timedelta(hours=3)  # its end: still running (Test Kitchen's window)
    assert names(cache) == ["starts-in-an-hour"]
    clock.now = NOW + timedelta(hours=3, microseconds=1)
    assert names(cache) == []
    registry.close()


def test_another_process_write_is_seen_through_the_signal(tmp_path: Path) -> None:
    clock = Clock()
    registry = Registry.open(None, tmp_path, clock=clock)
    signal = ChangeSignal(tmp_path / "signal")
    reader = DocumentCache(registry, signal)
    reader.watch.poll_seconds = 3600  # only the signal can make it look again
    assert names(reader) == []
    first = asyncio.run(reader.get(KEY))
    assert asyncio.run(reader.get(KEY)) is first  # cached: the same object
    writer = DocumentCache(registry, signal)  # "another worker" sharing the data directory
    registry.create("experiment", row("written-elsewhere", NOW - timedelta(hours=1),
                                      NOW + timedelta(hours=1)), "test")
    writer.invalidate()
    assert names(reader) == ["written-elsewhere"]
    registry.close()
