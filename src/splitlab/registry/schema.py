"""The registry's tables, its database engines and its versioned schema migrations.

One schema serves SQLite (the embedded default, a file in the data directory) and PostgreSQL
(``SPLITLAB_DATABASE_URL=postgresql://...``, driven by psycopg 3). Migrations are Alembic
revisions in ``registry/migrations/versions``, applied on start by :func:`migrate`; the version
is kept in ``<prefix>alembic_version``. Applying them is idempotent and safe when several worker
processes start at once (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite).
The table descriptions below are what queries use; they must match the latest migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
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
    create_engine,
    event,
    inspect,
    text,
)

from splitlab.datadir import private_file

MIGRATIONS = Path(__file__).with_name("migrations")
KINDS = ("experiment", "instrument", "layer", "holdout")
"""What the registry stores: every kind shares one table, told apart by ``kind``."""
RESULTS_TABLES = ("leases", "experiment_metrics", "metrics", "results_runs")
"""Tables of the continuous results (migration 0002; ``splitlab.results.store`` describes them),
in the order they can be dropped."""


@dataclass(frozen=True)
class Tables:
    """The registry's tables, every name starting with ``prefix`` (tests use a unique one)."""

    prefix: str
    state: Table
    objects: Table
    history: Table

    @classmethod
    def build(cls, prefix: str = "") -> Tables:
        """Describe the tables named ``<prefix>objects`` and so on."""
        md = MetaData()
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
        )
        history = Table(
            f"{prefix}history", md,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("object_id", Integer, ForeignKey(objects.c.id), nullable=False),
            Column("revision", Integer, nullable=False),
            Column("at", DateTime(timezone=True), nullable=False),
            Column("actor", String(255), nullable=False),
            Column("action", String(16), nullable=False),
            Column("row", Text, nullable=False),
            Column("changes", Text, nullable=False),
        )
        return cls(prefix, state, objects, history)


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
    engine = create_engine(f"sqlite:///{private_file(data_dir / 'registry.sqlite')}")
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


def _alembic_config(tables: Tables, connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["prefix"] = tables.prefix
    return config


def _adopt_pre_alembic(conn: Connection, tables: Tables, config: Config) -> None:
    """Databases made before the switch to Alembic recorded version 1 in ``schema_migrations``;
    their schema is that of revision 0001, so they are stamped with it (the old table goes)."""
    names = set(inspect(conn).get_table_names())
    legacy = f"{tables.prefix}schema_migrations"
    if legacy not in names or f"{tables.prefix}alembic_version" in names:
        return
    versions = set(conn.execute(text(f'SELECT version FROM "{legacy}"')).scalars())
    if versions != {1}:
        raise RuntimeError(f"{legacy} holds unknown versions {sorted(versions)}")
    command.stamp(config, "0001")
    conn.execute(text(f'DROP TABLE "{legacy}"'))


def migrate(engine: Engine, tables: Tables) -> str:
    """Apply the migrations not yet applied; return the revision now in force."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                         {"key": f"{tables.prefix}alembic_version"})
        config = _alembic_config(tables, conn)
        _adopt_pre_alembic(conn, tables, config)
        command.upgrade(config, "head")
        revision = conn.execute(text(f'SELECT version_num FROM "{tables.prefix}alembic_version"'))
        return str(revision.scalar_one())


def drop_all(engine: Engine, tables: Tables) -> None:
    """Drop every registry table (tests clean up their prefixed tables with this)."""
    with engine.begin() as conn:
        for name in RESULTS_TABLES:
            conn.execute(text(f'DROP TABLE IF EXISTS "{tables.prefix}{name}"'))
        for table in (tables.history, tables.objects, tables.state):
            table.drop(conn, checkfirst=True)
        conn.execute(text(f'DROP TABLE IF EXISTS "{tables.prefix}alembic_version"'))
