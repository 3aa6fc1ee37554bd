"""The sharded event log: per-process shards, read back as one log, each id exactly once."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from splitlab.intake.export import iterate, open_reader, tail
from splitlab.intake.shards import ShardedEventLog, shard_paths
from splitlab.intake.sinks import StoredEvent
from splitlab.intake.sqlite_log import SQLiteEventLog, SQLiteSink, claim_shard, shard_path


def stored(event_id: str, dt: str, stream: str = "s") -> StoredEvent:
    return StoredEvent(event_id, stream, dt, f'{{"id":"{event_id}"}}'.encode())


def dt(second: int) -> str:
    return f"2026-11-22T00:{second // 60:02d}:{second % 60:02d}.000Z"


def test_each_claim_takes_a_free_shard_and_a_closed_one_is_taken_again(tmp_path: Path) -> None:
    base = tmp_path / "events.sqlite"
    first, owner0 = claim_shard(base)
    second, owner1 = claim_shard(base)
    assert (first, second) == (base, tmp_path / "events-1.sqlite")
    owner0.close()
    again, owner = claim_shard(base)
    assert again == base
    owner.close()
    owner1.close()


def test_sinks_of_two_processes_write_two_shards_read_as_one(tmp_path: Path) -> None:
    import asyncio

    async def scenario() -> None:
        base = tmp_path / "events.sqlite"
        one, two = SQLiteSink(base, sharded=True), SQLiteSink(base, sharded=True)
        await one.start()
        await two.start()
        await one.write([stored("a", dt(1)), stored("c", dt(3))])
        await two.write([stored("b", dt(2)), stored("a", dt(4))])  # "a" again: a retry
        await one.close()
        await two.close()

    asyncio.run(scenario())
    assert sorted(shard_paths(tmp_path / "events.sqlite")) == [0, 1]
    reader = open_reader(tmp_path, None)
    assert [e.id for e in iterate(reader, None, None)] == ["a", "b", "c"]


def fill(tmp_path: Path, shards: int, seed: int) -> tuple[Path, set[str]]:
    """Shards holding random events, a third of the ids stored in two or three shards."""
    rng = random.Random(seed)
    base = tmp_path / "events.sqlite"
    logs = [SQLiteEventLog(shard_path(base, i)) for i in range(shards)]
    ids: set[str] = set()
    for n in range(600):
        event_id = f"id-{rng.randrange(400)}" if n % 3 == 0 else f"id-{n}-{seed}"
        ids.add(event_id)
        for log in rng.sample(logs, rng.choice([1, 1, 2, 3][:shards + 1])):
            log.append([stored(event_id, dt(rng.randrange(3600)), rng.choice("xy"))])
    for log in logs:
        log.close()
    return base, ids


@pytest.mark.parametrize("page", [1, 7, 5000])
def test_every_id_is_read_exactly_once_whatever_the_page_size(tmp_path: Path, page: int) -> None:
    base, ids = fill(tmp_path, 3, seed=page)
    reader = ShardedEventLog(base)
    after, seen = 0, []
    while rows := reader.read(after=after, limit=page):
        assert all(position > after for position, _ in rows)
        assert [p for p, _ in rows] == sorted(p for p, _ in rows)
        after = rows[-1][0]
        seen.extend(e.id for _, e in rows)
    assert sorted(seen) == sorted(ids)
    assert reader.count() > len(ids)  # the copies are there; the reader hides them


def test_a_stream_filter_sees_each_of_its_ids_once(tmp_path: Path) -> None:
    base, _ = fill(tmp_path, 2, seed=3)
    expected = {r[0] for i in shard_paths(base).values()
                for r in SQLiteEventLog(i)._db.execute("SELECT id FROM events WHERE stream='x'")}
    seen = [e.id for e in iterate(ShardedEventLog(base), "x", None)]
    assert sorted(seen) == sorted(expected)


def test_a_copy_committed_after_the_reader_passed_the_first_is_not_read(tmp_path: Path) -> None:
    base = tmp_path / "events.sqlite"
    zero, one = SQLiteEventLog(base), SQLiteEventLog(shard_path(base, 1))
    zero.append([stored("r", dt(10))])
    one.append([stored("q", dt(1))])
    reader = ShardedEventLog(base)
    rows = reader.read()
    assert [e.id for _, e in rows] == ["q", "r"]
    one.append([stored("r", dt(5)), stored("z", dt(6))])  # a retry of "r", received earlier
    assert [e.id for _, e in reader.read(after=rows[-1][0])] == ["z"]
    assert [e.id for e in iterate(ShardedEventLog(base), None, None)] == ["q", "r", "z"]


def test_tail_follows_shards_including_one_that_appears_later(tmp_path: Path) -> None:
    base = tmp_path / "events.sqlite"
    zero = SQLiteEventLog(base)
    zero.append([stored("a", dt(1)), stored("b", dt(2))])
    later: list[SQLiteEventLog] = []

    def sleep(_seconds: float) -> None:
        if not later:
            later.append(SQLiteEventLog(shard_path(base, 1)))
            later[0].append([stored("c", dt(3)), stored("b", dt(4))])
        else:
            zero.append([stored("d", dt(5))])

    followed = tail(ShardedEventLog(base), None, 1, follow=True, sleep=sleep)
    assert [next(followed).id for _ in range(3)] == ["b", "c", "d"]


def test_one_shard_positions_are_the_files_seq(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite")
    log.append([stored(f"e{i}", dt(i)) for i in range(5)])
    assert ShardedEventLog(tmp_path / "events.sqlite").read(after=2) == log.read(after=2)
    assert ShardedEventLog(tmp_path / "events.sqlite").last(count=2) == log.last(count=2)


def test_tail_after_a_clock_step_back_does_not_repeat_an_event(tmp_path: Path) -> None:
    base = tmp_path / "events.sqlite"
    zero = SQLiteEventLog(base)
    zero.append([stored("a", dt(5))])
    zero.append([stored("b", dt(3))])  # committed later, received "earlier"
    SQLiteEventLog(shard_path(base, 1)).append([stored("x", dt(1))])

    def sleep(_seconds: float) -> None:
        zero.append([stored("d", dt(9))])

    followed = tail(ShardedEventLog(base), None, 2, follow=True, sleep=sleep)
    assert [next(followed).id for _ in range(3)] == ["a", "b", "d"]  # a shard keeps its order
