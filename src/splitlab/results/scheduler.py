"""The scheduler: every interval, extend the lake, then compute and store every running
experiment's results with its health. Used inside ``splitlab serve`` (a thread per worker
process) and by the separate ``splitlab results run`` worker.

Only the holder of the lease ``results`` in the registry database computes; the lease lasts
:attr:`Scheduler.lease_seconds` and is renewed by each run, so when its holder dies another
scheduler takes over once it expires. A run's report is what ``splitlab analyze --format json``
prints for the experiment, over the whole lake, with the metrics the experiment names. With a
unit store (DuckDB) the report is read from the experiment's unit table, brought up to date from
the lake's new files (:mod:`splitlab.results.units`), instead of from the whole lake; SQL
metrics, which read events, and the Spark engine compute over the whole lake.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from splitlab.analysis.analyze import Options, aggregates_of, analyze, report
from splitlab.analysis.engines import Engine
from splitlab.analysis.metrics import Metric
from splitlab.analysis.report import to_dict
from splitlab.core.model import Experiment, parse_time
from splitlab.errors import AnalysisError, ConfigError, NotFoundError
from splitlab.registry import views
from splitlab.registry.store import Registry
from splitlab.results import health
from splitlab.results.lake import EventSource, ExtendResult, Lake
from splitlab.results.store import LEASE, LEASE_SECONDS, ResultsStore, holder_name
from splitlab.results.units import UnitStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RunSummary:
    """What one scheduler run did."""

    lake: ExtendResult = field(default_factory=ExtendResult)
    stored: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


class Scheduler:
    """Computes results on ``engine`` over ``lake`` fed by ``sources``."""

    def __init__(self, registry: Registry, store: ResultsStore, lake: Lake,
                 sources: Sequence[Callable[[], EventSource]], engine: Callable[[], Engine],
                 quiet_hours: float = health.DEFAULT_QUIET_HOURS,
                 lease_seconds: float = LEASE_SECONDS, units: UnitStore | None = None,
                 holder: str | None = None) -> None:
        self.registry = registry
        self.store = store
        self.lake = lake
        self.sources = sources
        self.engine_factory = engine
        self.quiet_hours = quiet_hours
        self.lease_seconds = lease_seconds
        self.holder = holder or holder_name()
        self.units = units
        self._engine: Engine | None = None
        self._loaded = False

    def run_once(self) -> RunSummary | None:
        """One run; ``None`` when another scheduler holds the lease."""
        if not self.store.claim(self.holder, self.lease_seconds):
            return None
        summary = RunSummary()
        for open_source in self.sources:
            try:
                source = open_source()
            except NotFoundError:  # the log does not exist yet: nothing has arrived
                continue
            try:
                summary.lake = summary.lake + self.lake.extend(source)
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
        if not self.lake.has_files():
            return summary
        now = datetime.now(UTC)
        running = [r.row for r in self.registry.records("experiment")
                   if views.status(r.row, now) == "running"]
        if not running:
            return summary
        self._loaded = False
        tallies = self.lake.tallies()
        through = self.lake.events_through()
        for row in running:
            self.store.claim(self.holder, self.lease_seconds)
            name = row["name"]
            try:
                result, problem = self._report(row)
            except AnalysisError as error:
                summary.skipped[name] = str(error)
                continue
            checks = [health.srm(result), health.multiple_groups(result),
                      health.no_events(tallies.get(name), parse_time(row.get("start"), "start"),
                                       now, self.quiet_hours),
                      health.error_share(tallies.get(name)), health.metrics(problem)]
            self.store.save_run(name, datetime.now(UTC), through, result["engine"], result,
                                [c.to_json() for c in checks])
            summary.stored.append(name)
        return summary

    def _report(self, row: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The report (with the experiment's metrics when they can be computed) and, when they
        cannot, why. The SRM test expects the split the row configures on each unit's site."""
        try:
            options = Options.of(Experiment.from_config(row))
        except ConfigError as error:
            raise AnalysisError(f"the config row cannot be read: {error}") from error
        catalog: list[Metric] = self.store.catalog_for(row["name"])
        if self.units is not None and all(m.sql is None for m in catalog):
            aggregates, _ = aggregates_of(catalog)
            self.units.update(self.lake, options.experiment, aggregates, options.trigger)
            return to_dict(report(self.units, options, catalog)), None
        engine = self._events_engine()
        try:
            return to_dict(analyze(engine, options, catalog)), None
        except AnalysisError as error:
            if not catalog:
                raise
            return to_dict(analyze(engine, options)), str(error)

    def _events_engine(self) -> Engine:
        """The engine with the lake loaded as ``events`` (once per run)."""
        engine = self._open_engine()
        if not self._loaded:
            engine.load_events(self.lake.root)
            self._loaded = True
        return engine

    def _open_engine(self) -> Engine:
        if self._engine is None:
            self._engine = self.engine_factory()
        return self._engine

    def close(self) -> None:
        """Give up the lease and close the engine and the lake."""
        self.store.release(LEASE, self.holder)
        if self._engine is not None:
            self._engine.close()
        if self.units is not None:
            self.units.close()
        self.lake.close()

