"""The event log in PostgreSQL (``SPLITLAB_DATABASE_URL``), with the embedded log's guarantees.

A write returns after its transaction committed (PostgreSQL's default ``synchronous_commit``
flushes the WAL first); ``id`` (``meta.id``) is the primary key and inserts skip existing ids, so
retries, spool replays and several splitlab instances sharing the table do not duplicate.
Concurrent requests of a process share one connection through group commit (one multi-row
``INSERT … SELECT FROM unnest(…)`` per commit, its arrays sent in binary).

The client enforces its own deadlines, since ``statement_timeout`` cannot fire on a server that
does not answer: connecting and each commit get
:data:`~splitlab.intake.remote.OPERATION_TIMEOUT`, after which the write fails and the connection
is replaced. The connection lives in the background (:class:`~splitlab.intake.remote.Connector`):
a write never waits for a connect, it fails at once while there is no connection.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import psycopg
from psycopg import sql

from splitlab.errors import SinkError
from splitlab.intake.remote import OPERATION_TIMEOUT, Connector, Deadlines
from splitlab.intake.sinks import GroupCommit, StoredEvent

DEFAULT_TABLE = "events"
CONNECT_TIMEOUT = 3
STATEMENT_TIMEOUT_MS = int(OPERATION_TIMEOUT * 1000)  # the server's side of the same deadline
_TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DT_TEXT = """to_char(dt AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


def table_name(name: str) -> sql.Identifier:
    """A safe identifier for the events table (lower-case letters, digits, underscores)."""
    if not _TABLE.match(name):
        raise ValueError(f"invalid events table name {name!r}")
    return sql.Identifier(name)


def create_table(table: str) -> sql.Composed:
    """DDL creating the events table and its index if absent."""
    ident = table_name(table)
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {t} (seq bigserial NOT NULL UNIQUE, id text PRIMARY KEY, "
        "stream text NOT NULL, dt timestamptz NOT NULL, body jsonb NOT NULL); "
        "CREATE INDEX IF NOT EXISTS {i} ON {t} (stream, dt)"
    ).format(t=ident, i=sql.Identifier(f"{table}_stream_dt"))


Connection = psycopg.AsyncConnection[tuple[object, ...]]


class _PostgresOpener:
    """Opens connections with the sink's settings and makes sure the table exists."""

    def __init__(self, url: str, table: str) -> None:
        self.url = url
        self.table = table

    async def open(self) -> Connection:
        connection = await psycopg.AsyncConnection.connect(
            self.url, connect_timeout=CONNECT_TIMEOUT, autocommit=True,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}")
        try:
            async with connection.transaction():  # instances starting together queue here
                await connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                                         (self.table,))
                await connection.execute(create_table(self.table))
            await connection.set_autocommit(False)
        except BaseException:
            await connection.close()
            raise
        return connection

    def usable(self, connection: Connection) -> bool:
        return not connection.closed and not connection.broken

    async def close(self, connection: Connection) -> None:
        await connection.close()


class PostgresSink:
    """Stores events in a PostgreSQL table (created on connect)."""

    def __init__(self, url: str, table: str = DEFAULT_TABLE) -> None:
        self.url = url
        self.table = table
        # Binary parameters (%b): psycopg writes a text array's elements with a regular
        # expression each, in Python (~40 us of the worker's CPU per event); as binary arrays,
        # and the bodies as the bytes they already are, ~4 us. The casts happen in the server.
        self._insert = sql.SQL(
            "INSERT INTO {t} (id, stream, dt, body) SELECT i, s, d::timestamptz, "
            "convert_from(b, 'UTF8')::jsonb FROM unnest(%b::text[], %b::text[], %b::text[], "
            "%b::bytea[]) AS rows (i, s, d, b) ON CONFLICT (id) DO NOTHING"
        ).format(t=table_name(table))
        self._connector: Connector[Connection] = Connector(
            _PostgresOpener(url, table), "PostgreSQL")
        self._deadlines = Deadlines()
        self._group = GroupCommit(self._commit)

    async def start(self) -> None:
        """Connect in the background (waiting a moment for it); a server that is down is no
        error."""
        await self._connector.start()

    async def _commit(self, events: list[StoredEvent]) -> None:
        connection = self._connector.current()
        try:
            await self._deadlines.run(self._insert_all(connection, events), OPERATION_TIMEOUT,
                                      "PostgreSQL insert")
        except (psycopg.Error, SinkError) as error:
            self._connector.broken(connection, str(error))
            raise SinkError(f"PostgreSQL write failed: {error}") from error

    async def _insert_all(self, connection: Connection, events: list[StoredEvent]) -> None:
        async with connection.transaction():
            await connection.execute(self._insert, (
                [e.id for e in events], [e.stream for e in events], [e.dt for e in events],
                [e.body for e in events]))

    async def write(self, events: Sequence[StoredEvent]) -> None:
        """Store ``events``; returns after the transaction holding them committed."""
        await self._group.submit(events)

    async def close(self) -> None:
        """Finish the running commit and disconnect."""
        await self._group.drain()
        await self._connector.close()
        await self._deadlines.close()


class PostgresEventReader:
    """Reads the PostgreSQL event log back (``splitlab events export / tail``)."""

    def __init__(self, url: str, table: str = DEFAULT_TABLE) -> None:
        self._connection = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True)
        self._table = table_name(table)

    def read(
        self, stream: str | None = None, since: str | None = None, after: int = 0,
        limit: int = 1000,
    ) -> list[tuple[int, StoredEvent]]:
        """Up to ``limit`` events with ``seq > after`` in order, filtered by stream and dt."""
        query = sql.SQL(
            "SELECT seq, id, stream, " + DT_TEXT + ", body::text FROM {t} WHERE seq > %s"
            " AND (%s::text IS NULL OR stream = %s) AND (%s::timestamptz IS NULL OR dt >= %s)"
            " ORDER BY seq LIMIT %s").format(t=self._table)
        rows = self._connection.execute(query, (after, stream, stream, since, since, limit))
        return [(int(r[0]), StoredEvent(r[1], r[2], r[3], r[4].encode())) for r in rows]

    def last(self, stream: str | None = None, count: int = 10) -> list[tuple[int, StoredEvent]]:
        """The newest ``count`` events (of ``stream``), oldest first."""
        query = sql.SQL(
            "SELECT seq, id, stream, " + DT_TEXT + ", body::text FROM {t}"
            " WHERE (%s::text IS NULL OR stream = %s) ORDER BY seq DESC LIMIT %s"
        ).format(t=self._table)
        rows = list(self._connection.execute(query, (stream, stream, count)))
        return [(int(r[0]), StoredEvent(r[1], r[2], r[3], r[4].encode())) for r in reversed(rows)]

    def close(self) -> None:
        """Disconnect."""
        self._connection.close()
