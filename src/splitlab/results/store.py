"""The results store, in the registry's database (SQLite or PostgreSQL, migration 0002): every
run of every experiment with its report and health, the metrics catalog, the metrics each
experiment names, and the lease that lets one scheduler compute at a time.

A run is kept forever (the history); the latest is the one with the highest id. Metric
definitions are the entries of a metrics catalog (:mod:`splitlab.analysis.metrics`), validated
when stored; an experiment references them by name.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from splitlab.analysis.metrics import Metric, parse_catalog
from splitlab.errors import AnalysisError, ConfigError, ConflictError, NotFoundError
from splitlab.registry.store import as_utc

LEASE = "results"
"""The lease whose holder computes results (one scheduler per registry database)."""
LEASE_SECONDS = 60.0
"""How long a lease lasts unless renewed (each run renews it)."""


def holder_name() -> str:
    """A lease holder's name: host, process and a random part (unique per scheduler)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def now_ms() -> int:
    """The wall clock in milliseconds, as leases count time."""
    return time.time_ns() // 1_000_000


WHEN = DateTime(timezone=True)
METRIC_NAME = re.compile(r"[A-Za-z0-9][-_.A-Za-z0-9]{0,127}")
METRIC_NAME_RULE = "1 to 128 of A-Z a-z 0-9 - _ . starting with a letter or digit"


@dataclass(frozen=True, slots=True)
class Run:
    """One stored computation of one experiment's results."""

    id: int
    experiment: str
    computed_at: datetime
    events_through: str | None
    engine: str
    report: dict[str, Any]
    health: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    """A metrics catalog entry as stored (``definition`` is the entry's JSON object)."""

    name: str
    definition: dict[str, Any]
    updated_at: datetime


def parse_definition(name: str, definition: object) -> Metric:
    """Validate one catalog entry named ``name``; :class:`ConfigError` says what is wrong."""
    if not METRIC_NAME.fullmatch(name):
        raise ConfigError("name", f"invalid metric name {name!r}: {METRIC_NAME_RULE}")
    if not isinstance(definition, dict):
        raise ConfigError("", "a metric definition is a JSON object with kind (and filter, ...)")
    if definition.get("name", name) != name:
        raise ConfigError("name", f"the definition names {definition.get('name')!r}, not {name!r}")
    try:
        return parse_catalog([{**definition, "name": name}])[0]
    except AnalysisError as error:
        raise ConfigError("", str(error)) from None


class ResultsStore:
    """The results tables (named ``<prefix>results_runs`` and so on) on ``engine``."""

    def __init__(self, engine: Engine, prefix: str = "") -> None:
        self.engine = engine
        md = MetaData()
        self.runs = Table(
            f"{prefix}results_runs", md,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("experiment", String(255), nullable=False),
            Column("computed_at", WHEN, nullable=False),
            Column("events_through", String(40)),
            Column("engine", String(16), nullable=False),
            Column("report", Text, nullable=False),
            Column("health", Text, nullable=False))
        self.metrics = Table(
            f"{prefix}metrics", md,
            Column("name", String(255), primary_key=True),
            Column("definition", Text, nullable=False),
            Column("updated_at", WHEN, nullable=False))
        self.links = Table(
            f"{prefix}experiment_metrics", md,
            Column("experiment", String(255), primary_key=True),
            Column("metric", String(255), ForeignKey(self.metrics.c.name), primary_key=True),
            Column("position", Integer, nullable=False))
        self.leases = Table(
            f"{prefix}leases", md,
            Column("name", String(64), primary_key=True),
            Column("holder", String(255), nullable=False),
            Column("expires_ms", BigInteger, nullable=False))

    # --- runs -----------------------------------------------------------------------------

    def save_run(self, experiment: str, computed_at: datetime, events_through: str | None,
                 engine: str, report: dict[str, Any], health: list[dict[str, Any]]) -> int:
        """Store a run; returns its id."""
        with self.engine.begin() as conn:
            result = conn.execute(insert(self.runs).values(
                experiment=experiment, computed_at=computed_at, events_through=events_through,
                engine=engine, report=json.dumps(report, allow_nan=False),
                health=json.dumps(health)))
            key = result.inserted_primary_key
            return int(key[0]) if key else 0

    def _run(self, row: Any) -> Run:
        return Run(row.id, row.experiment, as_utc(row.computed_at), row.events_through,
                   row.engine, json.loads(row.report), json.loads(row.health))

    def latest(self, experiment: str) -> Run | None:
        """The newest run of ``experiment``, or ``None`` before the first."""
        runs = self.history(experiment, 1, 0)
        return runs[0] if runs else None

    def history(self, experiment: str, limit: int, offset: int) -> list[Run]:
        """Runs of ``experiment``, newest first."""
        query = (select(self.runs).where(self.runs.c.experiment == experiment)
                 .order_by(self.runs.c.id.desc()).limit(limit).offset(offset))
        with self.engine.connect() as conn:
            return [self._run(row) for row in conn.execute(query)]

    def count(self, experiment: str) -> int:
        """How many runs ``experiment`` has."""
        query = select(func.count()).where(self.runs.c.experiment == experiment)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def latest_of(self, experiments: Sequence[str]) -> dict[str, Run]:
        """The newest run of each of ``experiments`` that has one."""
        newest = self.latest_ids(experiments)
        return {run.experiment: run for run in self.runs_by_id(list(newest.values()))}

    def latest_ids(self, experiments: Sequence[str]) -> dict[str, int]:
        """The id of the newest run of each of ``experiments`` that has one (an index-only
        query: nothing is parsed)."""
        if not experiments:
            return {}
        query = (select(self.runs.c.experiment, func.max(self.runs.c.id))
                 .where(self.runs.c.experiment.in_(list(experiments)))
                 .group_by(self.runs.c.experiment))
        with self.engine.connect() as conn:
            return {str(name): int(newest) for name, newest in conn.execute(query)}

    def runs_by_id(self, ids: Sequence[int]) -> list[Run]:
        """The runs with these ids (absent ids are skipped), in no particular order. A stored
        run never changes, so callers may keep what this returns by id."""
        if not ids:
            return []
        with self.engine.connect() as conn:
            return [self._run(row) for row in
                    conn.execute(select(self.runs).where(self.runs.c.id.in_(list(ids))))]

    # --- the metrics catalog ----------------------------------------------------------------

    def put_metric(self, name: str, definition: object, now: datetime) -> MetricDefinition:
        """Create or replace the metric ``name`` (validated; :class:`ConfigError` if invalid)."""
        parse_definition(name, definition)
        assert isinstance(definition, dict)
        entry = {k: v for k, v in definition.items() if k != "name"}
        text = json.dumps(entry, sort_keys=True)
        with self.engine.begin() as conn:
            changed = conn.execute(update(self.metrics).where(self.metrics.c.name == name)
                                   .values(definition=text, updated_at=now))
            if changed.rowcount == 0:
                conn.execute(insert(self.metrics).values(name=name, definition=text,
                                                         updated_at=now))
        return MetricDefinition(name, entry, now)

    def metric_definitions(self) -> list[MetricDefinition]:
        """Every metric of the catalog, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(self.metrics).order_by(self.metrics.c.name))
            return [MetricDefinition(r.name, json.loads(r.definition), as_utc(r.updated_at))
                    for r in rows]

    def metric(self, name: str) -> MetricDefinition:
        """One metric (:class:`NotFoundError` when absent)."""
        for found in self.metric_definitions():
            if found.name == name:
                return found
        raise NotFoundError(f"no metric named {name!r} in the catalog")

    def delete_metric(self, name: str) -> None:
        """Remove a metric no experiment names (:class:`ConflictError` otherwise)."""
        with self.engine.begin() as conn:
            users = [r.experiment for r in conn.execute(
                select(self.links.c.experiment).where(self.links.c.metric == name))]
            if users:
                raise ConflictError(f"metric {name!r} is used by {', '.join(sorted(users))}; "
                                    "take it off those experiments first")
            if conn.execute(delete(self.metrics).where(self.metrics.c.name == name)
                            ).rowcount == 0:
                raise NotFoundError(f"no metric named {name!r} in the catalog")

    def set_experiment_metrics(self, experiment: str, names: object) -> list[str]:
        """Make ``names`` (in order) the metrics of ``experiment``; every one must exist."""
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError("metrics", "must be a list of metric names")
        if len(set(names)) != len(names):
            raise ConfigError("metrics", "names a metric twice")
        known = {m.name for m in self.metric_definitions()}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError("metrics", f"no metric named {unknown[0]!r} in the catalog")
        with self.engine.begin() as conn:
            conn.execute(delete(self.links).where(self.links.c.experiment == experiment))
            if names:
                conn.execute(insert(self.links), [
                    {"experiment": experiment, "metric": n, "position": i}
                    for i, n in enumerate(names)])
        return list(names)

    def experiment_metrics(self, experiment: str) -> list[str]:
        """The names of the metrics ``experiment`` names, in order."""
        query = (select(self.links.c.metric).where(self.links.c.experiment == experiment)
                 .order_by(self.links.c.position))
        with self.engine.connect() as conn:
            return [str(name) for name in conn.execute(query).scalars()]

    def catalog_for(self, experiment: str) -> list[Metric]:
        """The parsed metrics ``experiment`` names."""
        definitions = {m.name: m.definition for m in self.metric_definitions()}
        return [parse_definition(n, definitions[n]) for n in self.experiment_metrics(experiment)]

    # --- the lease --------------------------------------------------------------------------

    def claim(self, holder: str, seconds: float = LEASE_SECONDS) -> bool:
        """Take or renew the results lease (:data:`LEASE`) as ``holder`` from now on."""
        return self.acquire(LEASE, holder, seconds, now_ms())

    def acquire(self, name: str, holder: str, seconds: float, now_ms: int) -> bool:
        """Take or renew the lease ``name`` for ``seconds`` unless another holder has it."""
        until = now_ms + int(seconds * 1000)
        leases = self.leases
        with self.engine.begin() as conn:
            taken = conn.execute(update(leases).where(
                leases.c.name == name,
                or_(leases.c.holder == holder, leases.c.expires_ms < now_ms),
            ).values(holder=holder, expires_ms=until))
            if taken.rowcount == 1:
                return True
            try:
                with conn.begin_nested():
                    conn.execute(insert(leases).values(name=name, holder=holder,
                                                       expires_ms=until))
            except IntegrityError:
                return False
            return True

    def release(self, name: str, holder: str) -> None:
        """Give the lease up (when ``holder`` has it)."""
        with self.engine.begin() as conn:
            conn.execute(delete(self.leases).where(self.leases.c.name == name,
                                                   self.leases.c.holder == holder))
