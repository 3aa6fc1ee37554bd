"""Engines that run the analysis SQL: DuckDB (embedded default) and Apache Spark (at scale).

Every query is written once, in DuckDB's dialect (see :mod:`splitlab.analysis.queries`), and an
engine runs it through ``sqlglot`` into its own dialect. Both engines read the same materialised
Parquet files (:mod:`splitlab.analysis.materialize`, the lake) as the view ``events``, in which
every event appears once (rows sharing ``meta.id`` are deduplicated).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import sqlglot

from splitlab.analysis.materialize import MANIFEST
from splitlab.analysis.queries import deduplicated, literal
from splitlab.analysis.table import ANALYSIS_SCHEMA
from splitlab.errors import AnalysisError

CANONICAL_DIALECT = "duckdb"


class Engine(Protocol):
    """Where the aggregation runs. Rows come back as tuples of plain Python values."""

    name: str

    def load_events(self, directory: Path) -> None:
        """Make the Parquet files under ``directory`` the view ``events``."""

    def create_table(self, name: str, select: str) -> None:
        """Compute ``select`` (canonical SQL) once and keep it as table ``name``."""

    def query(self, select: str) -> list[tuple[Any, ...]]:
        """Run ``select`` (canonical SQL) and return its rows."""

    def close(self) -> None:
        """Release the engine's resources."""


def transpile(sql: str, dialect: str) -> str:
    """``sql`` (canonical DuckDB SQL) in ``dialect``."""
    if dialect == CANONICAL_DIALECT:
        return sql
    return ";\n".join(sqlglot.transpile(sql, read=CANONICAL_DIALECT, write=dialect))


def parquet_files(directory: Path) -> list[Path]:
    """The materialised Parquet files under ``directory`` (an error when there are none)."""
    files = sorted(directory.rglob("*.parquet"))
    if files:
        return files
    if (directory / MANIFEST).is_file():
        raise AnalysisError(f"no events under {directory}: the inputs materialised into it "
                            "held none")
    raise AnalysisError(f"no Parquet files under {directory}: materialise events into it "
                        f"first (splitlab materialize --events PATH --output {directory})")


def configure(connection: Any, threads: int | None = None, memory_limit: str | None = None,
              spill: Path | None = None) -> None:
    """splitlab's settings of a DuckDB connection: ``threads`` (default every usable core),
    ``memory_limit`` (``4GB``; DuckDB's default is 80% of the memory) and where to ``spill``
    past it (DuckDB's default: beside the database file, or ``.tmp`` in the working directory);
    no insertion order kept, no progress bar."""
    connection.execute(f"SET threads = {threads or len(os.sched_getaffinity(0))}")
    if memory_limit:
        connection.execute(f"SET memory_limit = {literal(memory_limit)}")
    if spill is not None:
        connection.execute(f"SET temp_directory = {literal(str(spill))}")
    connection.execute("SET preserve_insertion_order = false")
    connection.execute("SET enable_progress_bar = false")


class DuckDBEngine:
    """DuckDB in this process, in memory, set up by :func:`configure`."""

    name = "duckdb"

    def __init__(self, threads: int | None = None, memory_limit: str | None = None,
                 spill: Path | None = None) -> None:
        import duckdb

        self._connection = duckdb.connect(":memory:")
        configure(self._connection, threads, memory_limit, spill)

    def load_events(self, directory: Path) -> None:
        parquet_files(directory)
        pattern = str(directory / "**" / "*.parquet").replace("'", "''")
        self._connection.execute(
            f"CREATE OR REPLACE VIEW raw_events AS SELECT * FROM read_parquet('{pattern}', "
            "hive_partitioning = false, union_by_name = true)"
        )
        self._connection.execute("CREATE OR REPLACE VIEW events AS "
                                 + deduplicated("raw_events", ANALYSIS_SCHEMA.names))

    def create_table(self, name: str, select: str) -> None:
        self._connection.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select}")

    def query(self, select: str) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._connection.execute(select).fetchall()
        return rows

    def close(self) -> None:
        self._connection.close()


class SparkEngine:
    """Apache Spark through pyspark: ``master`` is ``local[N]`` here, a cluster URL in production.

    Starting Spark takes seconds; share one engine (one session) across analyses where possible.
    """

    name = "spark"

    def __init__(self, master: str = "local[2]", config: dict[str, str] | None = None) -> None:
        from pyspark.sql import SparkSession

        builder = (
            SparkSession.builder.master(master).appName("splitlab-analysis")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.ansi.enabled", "false")
        )
        for key, value in (config or {}).items():
            builder = builder.config(key, value)
        self._spark = builder.getOrCreate()
        self._spark.sparkContext.setLogLevel("ERROR")
        self._cached: list[str] = []

    def load_events(self, directory: Path) -> None:
        parquet_files(directory)
        frame = self._spark.read.option("recursiveFileLookup", "true").parquet(str(directory))
        frame.createOrReplaceTempView("raw_events")
        select = deduplicated("raw_events", ANALYSIS_SCHEMA.names)
        self._spark.sql(transpile(select, "spark")).createOrReplaceTempView("events")

    def create_table(self, name: str, select: str) -> None:
        frame = self._spark.sql(transpile(select, "spark")).cache()
        frame.count()
        frame.createOrReplaceTempView(name)

    def query(self, select: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._spark.sql(transpile(select, "spark")).collect()]

    def close(self) -> None:
        self._spark.catalog.clearCache()


def open_engine(name: str, memory_limit: str | None = None, spill: Path | None = None) -> Engine:
    """``duckdb`` (capped as :class:`DuckDBEngine` says) or ``spark`` (``SPLITLAB_SPARK_MASTER``
    names the master; default local)."""
    if name == "duckdb":
        return DuckDBEngine(memory_limit=memory_limit, spill=spill)
    if name == "spark":
        return SparkEngine(os.environ.get("SPLITLAB_SPARK_MASTER", "local[2]"))
    raise AnalysisError(f"unknown engine {name!r} (use duckdb or spark)")

