"""The embedded event log as shards: one SQLite file per writing process, read as one log.

Worker processes of ``splitlab serve`` do not share a file: each claims a shard at start by
holding an exclusive advisory lock on ``<shard>.owner`` for its lifetime (the kernel frees it
when the process dies, so a restarted worker takes over a free shard). Shard 0 is the log's own
path (``events.sqlite``), shard ``n`` is ``events-<n>.sqlite`` next to it; a single process
therefore writes the same file as before sharding. Each shard has the log's full durability
(WAL, ``synchronous=FULL``, ack after commit) and its own unique index on ``meta.id``.

:class:`ShardedEventLog` reads every shard as one log:

- **Positions.** A read position packs one ``seq`` per shard into one integer (shard ``n`` in
  bits ``64n`` to ``64n + 63``). Positions grow with every event read, a reader resumes from any
  position it was given, and with one shard a position is that file's ``seq``.
- **Order.** Pages of the shards are merged by receive time (``meta.dt``), then shard; each
  shard's own order (``seq``) is kept, so no event is skipped whatever the clocks did.
- **Duplicates.** A client's retry may reach another worker, so one ``meta.id`` can be stored in
  two shards. The reader yields, of the copies that match its filter, only the one it reaches
  first: an event is skipped when another shard holds its id at a position the reader has already
  passed. That depends only on the position, so a resumed reader and a live tail agree with one
  reading from the start: every stored id is yielded exactly once.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from splitlab.intake.sinks import StoredEvent
from splitlab.intake.sqlite_log import SQLiteEventLog

BITS = 64
MASK = (1 << BITS) - 1
Row = tuple[int, StoredEvent]


def shard_paths(base: Path) -> dict[int, Path]:
    """The shards of the log at ``base`` that exist, by index."""
    pattern = re.compile(rf"{re.escape(base.stem)}-([1-9][0-9]*){re.escape(base.suffix)}")
    found = {0: base} if base.is_file() else {}
    if base.parent.is_dir():
        for path in base.parent.iterdir():
            match = pattern.fullmatch(path.name)
            if match and path.is_file():
                found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def pack(cursor: dict[int, int]) -> int:
    """One integer for a position per shard."""
    return sum(seq << (BITS * index) for index, seq in cursor.items())


def unpack(position: int, indexes: Iterable[int]) -> dict[int, int]:
    """The position in each of ``indexes`` that ``position`` holds."""
    return {index: position >> (BITS * index) & MASK for index in indexes}


class ShardedEventLog:
    """Read access to every shard of the log at ``base`` (:class:`~splitlab.intake.export.
    EventReader`); shards that appear while reading are picked up by the next call."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._logs: dict[int, SQLiteEventLog] = {}

    def _shards(self) -> dict[int, SQLiteEventLog]:
        for index, path in shard_paths(self.base).items():
            if index not in self._logs:
                self._logs[index] = SQLiteEventLog(path)
        return self._logs

    def read(
        self, stream: str | None = None, since: str | None = None, after: int = 0,
        limit: int = 1000,
    ) -> list[Row]:
        """Up to ``limit`` events after position ``after``, each with its position."""
        shards = self._shards()
        cursor = unpack(after, shards)
        if len(shards) == 1:  # nothing to merge or to find twice
            ((index, log),) = shards.items()
            shift = BITS * index
            return [(seq << shift, event)
                    for seq, event in log.read(stream, since, cursor[index], limit)]
        while True:
            pages = {i: log.read(stream, since, cursor[i], limit) for i, log in shards.items()}
            merged = list(heapq.merge(
                *([(e.dt, i, seq, e) for seq, e in page] for i, page in pages.items())))[:limit]
            if not merged:
                return []
            seen = self._elsewhere(shards, merged, stream, since)
            rows: list[Row] = []
            for _, index, seq, event in merged:
                cursor[index] = seq
                if not any(seen[other].get(event.id, MASK) <= cursor[other]
                           for other in shards if other != index):
                    rows.append((pack(cursor), event))
            if rows:  # else every event of the page was a copy passed before: read on
                return rows

    @staticmethod
    def _elsewhere(
        shards: dict[int, SQLiteEventLog], merged: Sequence[tuple[str, int, int, StoredEvent]],
        stream: str | None, since: str | None,
    ) -> dict[int, dict[str, int]]:
        """For each shard, the ``seq`` it holds (within the filter) of each id in ``merged``."""
        if len(shards) == 1:
            return {index: {} for index in shards}
        ids = [row[3].id for row in merged]
        return {index: log.positions(ids, stream, since) for index, log in shards.items()}

    def last(self, stream: str | None = None, count: int = 10) -> list[Row]:
        """The newest ``count`` events, oldest first; the last one's position is past every
        shard's newest event (a follower reads on from there)."""
        shards = self._shards()
        newest = {i: log.last(stream, count) for i, log in shards.items()}
        merged = list(heapq.merge(
            *([(e.dt, i, seq, e) for seq, e in rows] for i, rows in newest.items())))
        chosen = merged[-count:] if count > 0 else []
        cursor = {i: rows[-1][0] if rows else 0 for i, rows in newest.items()}
        for _, index, seq, _ in chosen:
            cursor[index] = min(cursor[index], seq - 1)
        rows: list[Row] = []
        ids: set[str] = set()
        for _, index, seq, event in chosen:
            cursor[index] = seq
            if event.id not in ids:
                ids.add(event.id)
                rows.append((pack(cursor), event))
        return rows

    def count(self) -> int:
        """How many events the shards hold together (copies in two shards count twice)."""
        return sum(log.count() for log in self._shards().values())

    def close(self) -> None:
        """Close every shard."""
        for log in self._logs.values():
            log.close()
        self._logs.clear()
