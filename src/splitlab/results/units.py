"""The unit store: per experiment, one row per unit kept up to date from the lake's new files, so
a scheduler run reads the (small) unit table instead of the whole lake.

It lives beside the lake in ``<lake>/_units.duckdb``. Per experiment it holds:

- ``u_<key>``: each triggered unit (its first trigger event: ``first_ts``, group, action source,
  site), the smallest and largest group named by any of its events of the experiment (the unit
  is in several groups when either differs from its group), and one column ``a<i>`` per
  aggregate of the experiment's metrics — what :func:`splitlab.analysis.queries.units` computes
  over the whole lake;
- ``p_<key>``: every event of the experiment of subjects without a trigger event yet (their
  aggregates depend on a first trigger that has not arrived);
- ``b_<key>``: each unit's events from before its first trigger (what it would take to recount
  the unit if an earlier trigger event arrived late);
- in ``folded``: the last lake file folded in, and a tag of the trigger and aggregates (a
  different catalog rebuilds the tables from the whole lake).

A run reads the experiment's rows of the files written since (deduplicated as the engines do;
across files the lake holds each event once) and, per subject touched:

- a unit whose first trigger does not move: its aggregates grow by the new events (counts and
  sums add, proportions take the maximum), its group range widens, and a new trigger event at
  the same time that sorts first replaces the trigger's fields;
- a subject without a unit row: its pending events and the new ones go through the same SQL as
  the full analysis; it becomes a unit once it has a trigger event, else stays pending;
- a unit whose first trigger moves earlier (a late event): its events from before the old
  trigger and the new events are counted against the new trigger; aggregates over the days
  before the trigger (``pre_days``) are replaced by that count, the others grow by it (the
  events after the old trigger counted already). No run reads the lake's old files.

The result equals the full computation's ``units`` (sums up to floating-point rounding: they
are added per run instead of in one pass). The tables and the folded position change in one
DuckDB transaction, so a crash leaves the previous state.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from splitlab.analysis import queries
from splitlab.analysis.engines import configure
from splitlab.analysis.metrics import Aggregate
from splitlab.errors import AnalysisError
from splitlab.results.lake import Lake

STORE_FILE = "_units.duckdb"
ROW_COLUMNS = ("event_id", "ts", "action", "action_source", "action_context", "value", "site",
               "experiment", "variation", "subject_key", "sampling_unit", "exposure_version")
_ORDER = "ts, variation, action_source NULLS FIRST, site NULLS FIRST"
_TRIGGER = ("subject_key", "first_ts", "variation", "action_source", "site")
_FORMAT = 2
"""Part of each experiment's tag: tables of another format are rebuilt from the lake."""


MEMORY_SHARE = 0.25
"""The share of the machine's memory the scheduler's DuckDB (the unit store, and the engine that
reads the whole lake) may use unless told otherwise.
DuckDB's own default is 80%: a first build over a 50M-event lake took 20 GB of a 24 GB machine,
pushing the lake, its id index and the intake's log out of the page cache (the next lake run
took 6.5 s instead of 2.3). Past the limit DuckDB spills to ``_units.duckdb.tmp``."""


def default_memory_limit() -> str:
    """:data:`MEMORY_SHARE` of the memory this process may use (the cgroup's limit when lower
    than the machine's), in MiB as DuckDB reads it."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    with contextlib.suppress(OSError, ValueError):
        total = min(total, int(Path("/sys/fs/cgroup/memory.max").read_text().strip()))
    return f"{max(256, int(total * MEMORY_SHARE) >> 20)}MiB"


def _key(experiment: str) -> str:
    return hashlib.sha256(experiment.encode()).hexdigest()[:16]


def _files(paths: Sequence[Path]) -> str:
    return "[" + ", ".join(queries.literal(str(p)) for p in paths) + "]"


class UnitStore:
    """The unit tables of the lake at ``lake_root``; close with :meth:`close`.

    The DuckDB file is opened at first use, not here: DuckDB lets one process hold it, and every
    worker of a multi-worker service builds a scheduler, while only the one holding the lease
    computes (the others would fail to open it at every interval)."""

    name = "duckdb"

    def __init__(self, lake_root: Path, threads: int | None = None,
                 memory_limit: str | None = None) -> None:
        self._path = lake_root / STORE_FILE
        self._threads = threads
        self._memory_limit = memory_limit or default_memory_limit()
        self._connection: duckdb.DuckDBPyConnection | None = None

    @property
    def _db(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            db = duckdb.connect(str(self._path))
            configure(db, self._threads, self._memory_limit)
            db.execute("CREATE TABLE IF NOT EXISTS folded (experiment VARCHAR PRIMARY KEY, "
                       "tag VARCHAR NOT NULL, through BIGINT NOT NULL)")
            self._connection = db
        return self._connection

    def update(self, lake: Lake, experiment: str, aggregates: Sequence[Aggregate],
               trigger: str = "enrollment") -> int:
        """Fold the lake's files written since the last update into ``experiment``'s tables
        (all of them the first time, or when ``trigger`` or ``aggregates`` changed); then
        ``units`` is that experiment's unit table for :meth:`query`. Returns the number of
        files folded."""
        key, tag = _key(experiment), repr((_FORMAT, trigger, tuple(aggregates)))
        row = self._db.execute("SELECT tag, through FROM folded WHERE experiment = ?",
                               [experiment]).fetchone()
        through = int(row[1]) if row is not None and row[0] == tag else 0
        files = lake.files(through)
        db = self._db
        db.execute("BEGIN TRANSACTION")
        try:
            if through == 0:
                self._create(key, len(aggregates))
            if files:
                _Fold(db, key, experiment, (trigger, list(aggregates))).run(
                    [path for _, path in files])
                through = files[-1][0]
            db.execute("INSERT OR REPLACE INTO folded VALUES (?, ?, ?)",
                       [experiment, tag, through])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        mixed = "CASE WHEN vmin <> variation OR vmax <> variation THEN 1 ELSE 0 END"
        columns = "".join(f", a{i}" for i in range(len(aggregates)))
        db.execute(f"CREATE OR REPLACE TEMP VIEW units AS SELECT subject_key, "
                   f"CAST(NULL AS VARCHAR) AS subject_id, variation, action_source, site, "
                   f"first_ts, {mixed} AS mixed{columns} FROM u_{key}")
        return len(files)

    def _create(self, key: str, aggregates: int) -> None:
        columns = "".join(f", a{i} DOUBLE" for i in range(aggregates))
        self._db.execute(f"DROP TABLE IF EXISTS u_{key}")
        self._db.execute(f"DROP TABLE IF EXISTS p_{key}")
        self._db.execute(f"DROP TABLE IF EXISTS b_{key}")
        self._db.execute(f"CREATE TABLE u_{key} (subject_key BIGINT, first_ts BIGINT, "
                         f"variation VARCHAR, action_source VARCHAR, site VARCHAR, "
                         f"vmin VARCHAR, vmax VARCHAR{columns})")
        self._db.execute(f"CREATE TABLE p_{key} (event_id VARCHAR, ts BIGINT, action VARCHAR, "
                         "action_source VARCHAR, action_context VARCHAR, value DOUBLE, "
                         "site VARCHAR, experiment VARCHAR, variation VARCHAR, "
                         "subject_key BIGINT, sampling_unit VARCHAR, exposure_version VARCHAR)")
        self._db.execute(f"CREATE TABLE b_{key} AS SELECT * FROM p_{key} WHERE FALSE")

    # The Engine protocol, over the unit table of the last update (what analysis.report reads).

    def load_events(self, directory: Path) -> None:
        raise AnalysisError("the unit store reads no events: use an engine")

    def create_table(self, name: str, select: str) -> None:
        raise AnalysisError("the unit store computes no tables: SQL metrics need an engine")

    def query(self, select: str) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._db.execute(select).fetchall()
        return rows

    def close(self) -> None:
        """Close the database (if it was opened)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _Fold:
    """One update of one experiment's tables (inside the caller's transaction)."""

    def __init__(self, db: duckdb.DuckDBPyConnection, key: str, experiment: str,
                 definition: tuple[str, list[Aggregate]]) -> None:
        self.db, self.experiment = db, experiment
        self.units, self.pending, self.before = f"u_{key}", f"p_{key}", f"b_{key}"
        self.trigger, self.aggregates = definition

    def run(self, new: Sequence[Path]) -> None:
        db, units = self.db, self.units
        action = queries.literal(queries.TRIGGERS[self.trigger])
        db.execute("CREATE OR REPLACE TEMP TABLE fresh AS " + self._rows(new))
        db.execute(f"""CREATE OR REPLACE TEMP TABLE first_new AS
SELECT subject_key, ts AS first_ts, variation, action_source, site FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY subject_key ORDER BY {_ORDER}) AS position
  FROM fresh WHERE action = {action} AND variation IS NOT NULL AND ts IS NOT NULL
) WHERE position = 1""")
        db.execute(f"""CREATE OR REPLACE TEMP TABLE touched AS
SELECT s.subject_key, u.subject_key IS NOT NULL AS known,
       COALESCE(f.first_ts < u.first_ts, FALSE) AS moved
FROM (SELECT DISTINCT subject_key FROM fresh) s
LEFT JOIN {units} u ON u.subject_key = s.subject_key
LEFT JOIN first_new f ON f.subject_key = s.subject_key""")
        counted = db.execute("SELECT count(*) FILTER (WHERE known), count(*) FILTER (WHERE moved) "
                             "FROM touched").fetchone()
        known, moved = counted if counted is not None else (0, 0)
        if known:  # each step below scans a whole table: skipped when it has nothing to do
            self._grow(moved > 0)
        db.execute(f"""CREATE OR REPLACE TEMP TABLE events AS SELECT *, CAST(NULL AS VARCHAR)
AS subject_id FROM (SELECT * FROM fresh WHERE subject_key IN (SELECT subject_key FROM touched
WHERE NOT known) UNION ALL SELECT * FROM {self.pending} WHERE subject_key IN (SELECT subject_key
FROM touched))""")
        self._build()

    def _rows(self, files: Sequence[Path]) -> str:
        """The experiment's rows with a subject in ``files``, each event once."""
        names = ", ".join(ROW_COLUMNS)
        order = ", ".join(f"{c} NULLS FIRST" for c in ROW_COLUMNS
                          if c not in ("event_id", "experiment"))
        return f"""
SELECT {names} FROM (
  SELECT {names}, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY {order}) AS copy
  FROM read_parquet({_files(files)}, hive_partitioning = false, union_by_name = true)
  WHERE experiment = {queries.literal(self.experiment)} AND subject_key IS NOT NULL
) WHERE copy = 1 OR event_id IS NULL"""

    def _grow(self, moved: bool) -> None:
        """Known units: count the new events (and, where the first trigger ``moved`` earlier,
        the unit's events from before its old trigger) against the unit's first trigger, and
        merge the result into their rows."""
        db, units, before = self.db, self.units, self.before
        earlier = (f"UNION ALL SELECT b.* FROM {before} b JOIN touched t ON "
                   "t.subject_key = b.subject_key WHERE t.moved" if moved else "")
        db.execute(f"""CREATE OR REPLACE TEMP TABLE events AS
SELECT *, CAST(NULL AS VARCHAR) AS subject_id FROM (
  SELECT f.* FROM fresh f JOIN touched t ON t.subject_key = f.subject_key WHERE t.known
  {earlier})""")
        db.execute(f"""CREATE OR REPLACE TEMP TABLE triggered AS
SELECT subject_key, CAST(NULL AS VARCHAR) AS subject_id, variation, action_source, site,
       first_ts FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY subject_key
                               ORDER BY first_ts, variation, action_source NULLS FIRST,
                                        site NULLS FIRST) AS position
  FROM (SELECT {", ".join(_TRIGGER)} FROM {units}
        WHERE subject_key IN (SELECT subject_key FROM touched WHERE known)
        UNION ALL
        SELECT {", ".join(_TRIGGER)} FROM first_new
        WHERE subject_key IN (SELECT subject_key FROM touched WHERE known))
) WHERE position = 1""")
        db.execute("CREATE OR REPLACE TEMP TABLE delta AS "
                   + queries.units(self.experiment, self.aggregates))
        merged = "".join(
            f", CASE WHEN t.moved THEN d.a{i} ELSE u.a{i} + d.a{i} END" if a.pre_days > 0
            else f", GREATEST(u.a{i}, d.a{i})" if a.kind == "proportion"
            else f", u.a{i} + d.a{i}"
            for i, a in enumerate(self.aggregates))
        db.execute(f"""CREATE OR REPLACE TEMP TABLE grown AS
SELECT d.subject_key, d.first_ts, d.variation, d.action_source, d.site,
       least(u.vmin, COALESCE(r.vmin, u.vmin)) AS vmin,
       greatest(u.vmax, COALESCE(r.vmax, u.vmax)) AS vmax{merged}
FROM {units} u JOIN delta d ON d.subject_key = u.subject_key
JOIN touched t ON t.subject_key = u.subject_key
LEFT JOIN (SELECT subject_key, min(variation) AS vmin, max(variation) AS vmax FROM fresh
           GROUP BY subject_key) r ON r.subject_key = u.subject_key""")
        db.execute(f"DELETE FROM {units} WHERE subject_key IN (SELECT subject_key FROM grown)")
        db.execute(f"INSERT INTO {units} SELECT * FROM grown")
        if moved:
            db.execute(f"DELETE FROM {before} WHERE subject_key IN (SELECT subject_key FROM "
                       "touched WHERE moved)")
        self._keep_before("grown")

    def _build(self) -> None:
        """Subjects rebuilt from ``events`` (all of their rows): units when they have a trigger
        event, else pending."""
        db, units, pending = self.db, self.units, self.pending
        db.execute("CREATE OR REPLACE TEMP TABLE triggered AS "
                   + queries.triggered(self.experiment, self.trigger))
        db.execute("CREATE OR REPLACE TEMP TABLE built AS "
                   + queries.units(self.experiment, self.aggregates))
        columns = "".join(f", b.a{i}" for i in range(len(self.aggregates)))
        db.execute(f"""INSERT INTO {units}
SELECT b.subject_key, b.first_ts, b.variation, b.action_source, b.site, r.vmin, r.vmax{columns}
FROM built b JOIN (SELECT subject_key, min(variation) AS vmin, max(variation) AS vmax
                   FROM events GROUP BY subject_key) r ON r.subject_key = b.subject_key""")
        db.execute(f"DELETE FROM {pending} WHERE subject_key IN (SELECT subject_key FROM touched)")
        db.execute(f"INSERT INTO {pending} SELECT {', '.join(ROW_COLUMNS)} FROM events "
                   "WHERE subject_key NOT IN (SELECT subject_key FROM triggered)")
        self._keep_before("built")

    def _keep_before(self, rows: str) -> None:
        """Keep the events of ``events`` from before the first trigger of their unit in
        ``rows`` (the units just written)."""
        self.db.execute(f"""INSERT INTO {self.before} SELECT {", ".join(f"e.{c}" for c in
ROW_COLUMNS)} FROM events e JOIN {rows} r ON r.subject_key = e.subject_key
WHERE e.ts < r.first_ts""")
