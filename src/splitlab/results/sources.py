"""Event sources of the lake: the event logs (SQLite, PostgreSQL), read through the intake's
:class:`~splitlab.intake.export.EventReader`, and a durable JetStream consumer
(:mod:`splitlab.results.consumer`).

A log is read in storage order (``seq``) from the checkpoint. PostgreSQL hands out ``seq`` when a
row is inserted, not when it commits, so a row with a lower ``seq`` can become visible after a
higher one was read (and inserts skipped as duplicates leave permanent holes). The checkpoint
therefore also keeps the holes below it, each with the time it was first seen: while a hole is
younger than :data:`GAP_GRACE_SECONDS` the next read starts below it again (the lake's id index
drops what it already has); older holes are forgotten. The SQLite log has no such holes (one
writer per shard, ``seq`` given at commit): its reader's position (one opaque, growing integer
that packs every shard's ``seq``) is kept as it is, without hole tracking.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from splitlab.intake.export import EventReader, open_reader
from splitlab.results.lake import Batch, EventSource

PAGE = 50_000
GAP_GRACE_SECONDS = 120.0
MAX_GAPS = 10_000


@dataclass(frozen=True, slots=True)
class LogPosition:
    """The last ``seq`` read and the holes below it (``seq`` → first seen, epoch seconds)."""

    after: int = 0
    gaps: tuple[tuple[int, float], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LogPosition:
        if text is None:
            return cls()
        data = json.loads(text)
        return cls(int(data["after"]), tuple((int(s), float(t)) for s, t in data["gaps"]))

    def dump(self) -> str:
        return json.dumps({"after": self.after, "gaps": [list(g) for g in self.gaps]})

    def start(self) -> int:
        """Where the next read begins: below the oldest open hole, else after the last seq."""
        return min([self.after, *(seq - 1 for seq, _ in self.gaps)])


def advance(position: LogPosition, seqs: list[int], now: float) -> LogPosition:
    """The position after reading ``seqs`` (ascending) from ``position.start()``."""
    seen = set(seqs)
    gaps = {seq: when for seq, when in position.gaps
            if seq not in seen and now - when < GAP_GRACE_SECONDS}
    previous = position.after
    for seq in seqs:
        if seq > previous + 1:
            for hole in range(previous + 1, min(seq, previous + 1 + MAX_GAPS)):
                gaps.setdefault(hole, now)
        previous = max(previous, seq)
    kept = sorted(gaps.items())[-MAX_GAPS:]
    return LogPosition(max(position.after, previous), tuple(kept))


class LogSource:
    """An event log as a lake source; ``name`` is ``sqlite`` or ``postgresql`` (only the latter
    has holes in its positions to come back for)."""

    def __init__(self, name: str, reader: EventReader, page: int = PAGE,
                 clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.holes = name == "postgresql"
        self.reader = reader
        self.page = page
        self.clock = clock

    def batches(self, position: str | None) -> Iterator[Batch]:
        """Pages of events from the checkpoint on, until a page comes back short."""
        current = LogPosition.parse(position)
        after = current.start()
        while True:
            page = self.reader.read(None, None, after, self.page)
            if not page:
                expired = advance(current, [], self.clock())
                if expired != current:
                    yield Batch([], expired.dump())
                return
            seqs = [seq for seq, _ in page]
            current = (advance(current, seqs, self.clock()) if self.holes
                       else LogPosition(max(current.after, seqs[-1])))
            after = seqs[-1]
            yield Batch([event for _, event in page], current.dump())
            if len(page) < self.page:
                return

    def committed(self, batch: Batch) -> None:
        """Nothing to acknowledge: the checkpoint is the position."""

    def close(self) -> None:
        """Close the reader."""
        self.reader.close()


def log_sources(data_dir: Path, sink: str, database_url: str | None,
                table_prefix: str = "") -> list[Callable[[], EventSource]]:
    """Openers of the event logs the intake writes with ``sink`` (``sqlite`` or
    ``postgresql``; the JetStream consumer is :mod:`splitlab.results.consumer`'s)."""
    if sink == "postgresql" and database_url:
        return [lambda: LogSource("postgresql", open_reader(data_dir, database_url,
                                                            table_prefix))]
    if sink == "sqlite":
        return [lambda: LogSource("sqlite", open_reader(data_dir, None))]
    return []
