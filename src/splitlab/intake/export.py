"""Reading the event log back: ``splitlab events export`` and ``splitlab events tail``.

Readers are the embedded SQLite log (``<data dir>/events.sqlite`` and the workers' shards
``events-<n>.sqlite``, read as one log by :class:`~splitlab.intake.shards.ShardedEventLog`) or
the PostgreSQL table. Positions (``seq``) are opaque integers that grow as a reader advances.
Export writes JSON lines (each line exactly one stored event) or Parquet with the columns
``id, stream, dt, schema, action, event`` (``event`` is the whole event as JSON text, ``dt`` the
receive time as a UTC timestamp); pyarrow is imported only for Parquet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import orjson

from splitlab.core.model import format_event_time, parse_time
from splitlab.errors import ConfigError, NotFoundError
from splitlab.intake.sinks import StoredEvent

FORMATS = ("jsonl", "parquet")
PAGE = 5000
PARQUET_ROWS = 50_000


class EventReader(Protocol):
    """Read access to a stored event log, in storage order (``seq``)."""

    def read(
        self, stream: str | None = None, since: str | None = None, after: int = 0,
        limit: int = 1000,
    ) -> list[tuple[int, StoredEvent]]:
        """Up to ``limit`` events with ``seq > after``, filtered by stream and receive time."""
        ...

    def last(self, stream: str | None = None, count: int = 10) -> list[tuple[int, StoredEvent]]:
        """The newest ``count`` events, oldest first."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def open_reader(data_dir: Path, database_url: str | None, table_prefix: str = "") -> EventReader:
    """The PostgreSQL log (table ``<prefix>events``) when ``database_url`` is given, else the
    embedded SQLite file."""
    if database_url:
        from splitlab.intake.postgres_log import PostgresEventReader

        return PostgresEventReader(database_url, f"{table_prefix}events")
    from splitlab.intake.shards import ShardedEventLog, shard_paths

    path = data_dir / "events.sqlite"
    if not shard_paths(path):
        raise NotFoundError(f"no event log at {path} (has the service received events?)")
    return ShardedEventLog(path)


def since_text(value: str | None) -> str | None:
    """``--since`` as the stored receive-time form (UTC, milliseconds, ``Z``)."""
    moment = parse_time(value, "--since")
    if moment is None:
        return None
    return format_event_time(moment)


def iterate(reader: EventReader, stream: str | None, since: str | None) -> Iterator[StoredEvent]:
    """Every matching event, oldest first, read page by page."""
    after = 0
    while page := reader.read(stream, since, after, PAGE):
        after = page[-1][0]
        yield from (event for _, event in page)


def format_for(output: Path, explicit: str | None) -> str:
    """The export format: ``explicit``, else from the extension (``.parquet`` or JSON lines)."""
    chosen = explicit or ("parquet" if output.suffix == ".parquet" else "jsonl")
    if chosen not in FORMATS:
        raise ConfigError("--format", f"must be one of {', '.join(FORMATS)}")
    return chosen


def write_jsonl(events: Iterable[StoredEvent], output: Path) -> int:
    """One stored event per line; returns how many."""
    count = 0
    with output.open("wb") as target:
        for event in events:
            target.write(event.body + b"\n")
            count += 1
    return count


def _row(event: StoredEvent) -> dict[str, Any]:
    body = orjson.loads(event.body)
    return {"id": event.id, "stream": event.stream,
            "dt": parse_time(event.dt, "dt"),
            "schema": body.get("$schema"), "action": body.get("action"),
            "event": event.body.decode()}


def write_parquet(events: Iterable[StoredEvent], output: Path) -> int:
    """Parquet with columns id, stream, dt, schema, action, event; returns how many rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.string()), ("stream", pa.string()),
                        ("dt", pa.timestamp("ms", tz="UTC")), ("schema", pa.string()),
                        ("action", pa.string()), ("event", pa.string())])
    count = 0
    with pq.ParquetWriter(output, schema) as writer:
        rows: list[dict[str, Any]] = []
        for event in events:
            rows.append(_row(event))
            if len(rows) >= PARQUET_ROWS:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                count, rows = count + len(rows), []
        if rows or count == 0:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            count += len(rows)
    return count


def export(reader: EventReader, output: Path, stream: str | None = None,
           since: str | None = None, fmt: str | None = None) -> int:
    """Write the matching events to ``output``; returns how many."""
    chosen = format_for(output, fmt)
    events = iterate(reader, stream, since_text(since))
    return write_parquet(events, output) if chosen == "parquet" else write_jsonl(events, output)


def tail(reader: EventReader, stream: str | None, count: int, follow: bool,
         poll: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> Iterator[StoredEvent]:
    """The newest ``count`` events, then (with ``follow``) each new one as it arrives."""
    latest = reader.last(stream, count)
    yield from (event for _, event in latest)
    after = latest[-1][0] if latest else 0
    while follow:
        page = reader.read(stream, None, after, PAGE)
        if page:
            after = page[-1][0]
            yield from (event for _, event in page)
        else:
            sleep(poll)
