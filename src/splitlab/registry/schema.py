"""The registry's tables, its database engines and its versioned schema migrations.

One schema serves SQLite (the embedded default, a file in the data directory) and PostgreSQL
(``SPLITLAB_DATABASE_URL=postgresql://...``, driven by psycopg 3). Migrations are a simple
ordered list recorded in a ``schema_migrations`` table (not Alembic: the schema is small and must
also be creatable under a per-test table prefix). Applying them is idempotent and safe when several
worker processes start at once (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    select,
    text,
)

KINDS = ("experiment", "instrument")
"""What the registry stores: both kinds share one table, told apart by ``kind``."""


@dataclass(frozen=True)
class Tables:
    """The registry's tables, every name starting with ``prefix`` (tests use a unique one)."""

    metadata: MetaData
    migrations: Table
    state: Table
    objects: Table
    history: Table

    @classmethod
    def build(cls, prefix: str = "") -> Tables:
        """Describe the tables named ``<prefix>objects`` and so on."""
        md = MetaData()
        migrations = Table(
            f"{prefix}schema_migrations", md,
            Column("version", Integer, primary_key=True),
            Column("applied_at", DateTime(timezone=True), nullable=False),
        )
        state = Table(
            f"{prefix}state", md,
            Column("id", Integer, primary_key=True),
            Column("change_counter", BigInteger, nullable=False),
        )
        objects = Table(
            f"{prefix}objects", md,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("kind", String(16), nullable=False),
            Column("name", String(255), nullable=False),
            Column("revision", Integer, nullable=False),
            Column("row", Text, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("updated_at", DateTime(timezone=True), nullable=False),
            Column("ended_at", DateTime(timezone=True), nullable=True),
            UniqueConstraint("kind", "name", name=f"{prefix}objects_kind_name"),
        )
        history = Table(
            f"{prefix}history", md,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("object_id", Integer, ForeignKey(objects.c.id), nullable=False, index=True),
            Column("revision", Integer, nullable=False),
            Column("at", DateTime(timezone=True), nullable=False),
            Column("actor", String(255), nullable=False),
            Column("action", String(16), nullable=False),
            Column("row", Text, nullable=False),
            Column("changes", Text, nullable=False),
            UniqueConstraint("object_id", "revision", name=f"{prefix}history_object_revision"),
        )
        return cls(md, migrations, state, objects, history)


def _v1_initial(conn: Connection, tables: Tables) -> None:
    for table in (tables.state, tables.objects, tables.history):
        table.create(conn, checkfirst=True)
    conn.execute(insert(tables.state).values(id=1, change_counter=0))


MIGRATIONS: tuple[Callable[[Connection, Tables], None], ...] = (_v1_initial,)
"""Migration ``n`` (1-based) is ``MIGRATIONS[n - 1]``; append, never edit a released one."""


def engine_for(database_url: str | None, data_dir: Path) -> Engine:
    """The engine for ``database_url`` (PostgreSQL) or, when unset, ``data_dir/registry.sqlite``."""
    if database_url:
        url = database_url
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                url = "postgresql+psycopg://" + url[len(plain):]
        if url.startswith("sqlite"):
            engine = create_engine(url)
            _sqlite_transactions(engine)
            return engine
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{data_dir / 'registry.sqlite'}")
    _sqlite_transactions(engine)
    return engine


def _sqlite_transactions(engine: Engine) -> None:
    """Real transactions on SQLite: WAL, a busy timeout, and ``BEGIN IMMEDIATE`` so two writers
    never deadlock upgrading a read lock (pysqlite's own transaction handling is bypassed)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def migrate(engine: Engine, tables: Tables) -> int:
    """Apply the migrations not yet applied; return the schema version now in force."""
    from datetime import UTC, datetime

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                         {"key": tables.migrations.name})
        tables.migrations.create(conn, checkfirst=True)
        applied = set(conn.execute(select(tables.migrations.c.version)).scalars())
        for number, step in enumerate(MIGRATIONS, start=1):
            if number in applied:
                continue
            step(conn, tables)
            conn.execute(insert(tables.migrations).values(version=number,
                                                          applied_at=datetime.now(UTC)))
    return len(MIGRATIONS)


def drop_all(engine: Engine, tables: Tables) -> None:
    """Drop every registry table (tests clean up their prefixed tables with this)."""
    with engine.begin() as conn:
        for table in (tables.history, tables.objects, tables.state, tables.migrations):
            table.drop(conn, checkfirst=True)
