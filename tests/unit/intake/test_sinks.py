"""Sinks: the in-memory sink, group commit, the SQLite log and the spool."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from splitlab.errors import SinkError
from splitlab.intake.sinks import GroupCommit, MemorySink, StoredEvent
from splitlab.intake.spool import SpoolingSink
from splitlab.intake.sqlite_log import SQLiteEventLog, SQLiteSink


def events(prefix: str, n: int, stream: str = "s") -> list[StoredEvent]:
    return [StoredEvent(f"{prefix}-{i}", stream, "2026-11-22T00:00:00.000Z", b'{"i":%d}' % i)
            for i in range(n)]


def test_group_commit_coalesces_concurrent_writers_and_fails_them_together() -> None:
    commits: list[int] = []
    fail = False

    async def commit(batch: list[StoredEvent]) -> None:
        await asyncio.sleep(0.01)
        if fail:
            raise OSError("disk full")
        commits.append(len(batch))

    async def main() -> None:
        nonlocal fail
        group = GroupCommit(commit)
        await asyncio.gather(*(group.submit(events(str(i), 3)) for i in range(10)))
        assert sum(commits) == 30
        assert len(commits) <= 2, "ten concurrent writers share at most two commits"
        fail = True
        results = await asyncio.gather(*(group.submit(events("x", 1)) for _ in range(3)),
                                       return_exceptions=True)
        assert all(isinstance(r, SinkError) and "disk full" in str(r) for r in results)

    asyncio.run(main())


def test_sqlite_sink_is_wal_full_sync_and_skips_duplicate_ids(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"

    async def main() -> None:
        sink = SQLiteSink(path)
        await sink.start()
        await asyncio.gather(*(sink.write(events(f"w{i}", 20)) for i in range(20)))
        await sink.write(events("w0", 20))
        await sink.close()

    asyncio.run(main())
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT count(*), count(DISTINCT id) FROM events").fetchone() == (400, 400)
    log = SQLiteEventLog(path)
    assert [e.id for _, e in log.read(stream="s", limit=2)] == ["w0-0", "w0-1"]
    assert log.read(since="2026-11-23", limit=5) == []
    assert log._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def _append_in_process(path: str, prefix: str) -> None:
    log = SQLiteEventLog(Path(path))
    for chunk in range(20):
        log.append(events(f"{prefix}-{chunk}", 10))


def test_several_processes_share_the_log(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_in_process, args=(str(path), f"p{i}"))
               for i in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert SQLiteEventLog(path).count() == 3 * 20 * 10


def test_spool_takes_over_while_the_sink_is_down_and_replays(tmp_path: Path) -> None:
    depths: list[int] = []

    async def main() -> None:
        inner = MemorySink()
        sink = SpoolingSink(inner, SQLiteSink(tmp_path / "spool.sqlite"), "memory",
                            retry_seconds=0.05, on_depth=lambda _, d: depths.append(d))
        await sink.start()
        await sink.write(events("a", 5))
        inner.available = False
        await sink.write(events("b", 5))
        await sink.write(events("c", 5))
        assert await sink.spool.count() == 10
        assert len(inner.events) == 5
        inner.available = True
        for _ in range(500):  # up to 10 s on a loaded machine
            await asyncio.sleep(0.02)
            # the replay reports the depth after its last delete: wait for that report too
            # (closing earlier cancels the replay between the delete and the report)
            if len(inner.events) == 15 and await sink.spool.count() == 0 and depths[-1] == 0:
                break
        assert sorted(e.id for e in inner.events) == sorted(
            e.id for p in "abc" for e in events(p, 5))
        assert await sink.spool.count() == 0
        await sink.close()

    asyncio.run(main())
    assert depths[-1] == 0 and max(depths) == 10


def test_spool_failure_is_reported_not_hidden(tmp_path: Path) -> None:
    async def main() -> None:
        inner = MemorySink()
        inner.available = False
        spool = SQLiteSink(tmp_path / "spool.sqlite")
        sink = SpoolingSink(inner, spool, "memory")
        await sink.start()
        await spool.close()
        with pytest.raises(Exception):  # noqa: B017 - executor shut down: the write must fail
            await sink.write(events("z", 1))

    asyncio.run(main())


def test_a_slow_remote_costs_a_write_at_most_the_deadline_then_writes_go_to_the_spool(
        tmp_path: Path) -> None:
    async def main() -> None:
        inner = MemorySink()
        sink = SpoolingSink(inner, SQLiteSink(tmp_path / "spool.sqlite"), "memory",
                            retry_seconds=60, deadline=0.1)
        await sink.start()
        inner.delay = 30.0  # stalled: it neither answers nor fails
        started = time.monotonic()
        await asyncio.gather(*(sink.write(events(f"s{i}", 2)) for i in range(20)))
        assert time.monotonic() - started < 2.0, "every write waited about the deadline at most"
        assert sink.down and await sink.spool.count() == 40
        started = time.monotonic()
        await sink.write(events("t", 2))  # known down: straight to the spool
        assert time.monotonic() - started < 0.1 and await sink.spool.count() == 42
        inner.delay = 0.0
        assert await sink.replay() == 42
        assert not sink.down and await sink.spool.count() == 0
        assert len(inner.events) == 42
        await sink.close()

    asyncio.run(main())


def test_group_commit_skips_writers_that_stopped_waiting() -> None:
    committed: list[str] = []

    async def commit(batch: list[StoredEvent]) -> None:
        await asyncio.sleep(0.05)
        committed.extend(e.id for e in batch)

    async def main() -> None:
        group = GroupCommit(commit)
        first = asyncio.ensure_future(group.submit(events("first", 1)))
        await asyncio.sleep(0.01)
        gave_up = asyncio.ensure_future(group.submit(events("gave-up", 1)))
        waits = asyncio.ensure_future(group.submit(events("waits", 1)))
        await asyncio.sleep(0.01)
        gave_up.cancel()
        await asyncio.gather(first, waits)
        assert gave_up.cancelled()

    asyncio.run(main())
    assert committed == ["first-0", "waits-0"]


def test_two_processes_never_replay_one_spool_at_the_same_time(tmp_path: Path) -> None:
    async def main() -> None:
        inner = MemorySink()
        first = SpoolingSink(inner, SQLiteSink(tmp_path / "spool.sqlite"), "m", retry_seconds=60)
        second = SpoolingSink(inner, SQLiteSink(tmp_path / "spool.sqlite"), "m", retry_seconds=60)
        await first.start()
        await second.start()
        await first.spool.write(events("x", 5000))
        inner.delay = 0.05
        counts = await asyncio.gather(first.replay(), second.replay())
        assert sorted(counts) == [0, 5000]
        assert len(inner.events) == 5000
        await first.close()
        await second.close()

    asyncio.run(main())


def test_a_process_that_does_not_replay_learns_from_the_replayer_that_the_remote_is_back(
        tmp_path: Path) -> None:
    """Two workers share a spool; the one without the replay lock must not spool every write
    until the spool is empty (under load it never is while that worker keeps feeding it)."""
    async def main() -> None:
        inner = MemorySink()
        replayer = SpoolingSink(inner, SQLiteSink(tmp_path / "spool.sqlite"), "m",
                                retry_seconds=60)
        other = SpoolingSink(inner, SQLiteSink(tmp_path / "spool.sqlite"), "m", retry_seconds=60)
        await replayer.start()
        await other.start()
        inner.available = False
        await other.write(events("spooled", 3))
        assert other.down
        await replayer.spool.write(events("x", 5000))
        assert await other.replay() == 0 and other.down, "nothing was delivered yet"
        inner.available, inner.delay = True, 0.3  # back, slow: each batch takes 0.3 s
        replaying = asyncio.ensure_future(replayer.replay())
        for _ in range(500):
            await asyncio.sleep(0.02)
            assert await other.replay() == 0  # the replayer holds the lock throughout
            if not other.down:
                break
        assert not other.down and not replaying.done(), "cleared during the other's replay"
        await other.write(events("live", 2))  # straight to the remote
        assert {"live-0", "live-1"} <= {e.id for e in inner.events}
        assert await replaying == 5003
        assert sorted(e.id for e in inner.events) == sorted(
            e.id for p, n in (("spooled", 3), ("x", 5000), ("live", 2)) for e in events(p, n))
        await replayer.close()
        await other.close()

    asyncio.run(main())
