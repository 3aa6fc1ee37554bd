"""Wiring a scheduler from settings: the same for ``splitlab serve`` (built on a background thread
in each worker process, :mod:`splitlab.results.background`) and for the separate ``splitlab
results run`` worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from splitlab.analysis.engines import Engine, open_engine
from splitlab.intake.jetstream import DEFAULT_STREAM, subject_prefix
from splitlab.intake.streams import DEFAULT_ERROR_STREAM
from splitlab.registry.store import Registry
from splitlab.results.lake import LAKE_DIR, EventSource, Lake
from splitlab.results.scheduler import Scheduler
from splitlab.results.sources import log_sources
from splitlab.results.store import LEASE_SECONDS, ResultsStore
from splitlab.results.units import UnitStore, default_memory_limit

ENGINE_SPILL = "_engine.tmp"
"""Where the scheduler's in-memory DuckDB engine spills (under the lake)."""


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """Where the events are and how to compute. ``events_sink`` is the intake's default sink:
    ``sqlite`` or ``postgresql`` (read as logs) or ``jetstream`` (a durable consumer named
    ``consumer`` on ``nats_url``)."""

    data_dir: Path
    events_sink: str = "sqlite"
    database_url: str | None = None
    table_prefix: str = ""
    nats_url: str | None = None
    nats_stream: str = DEFAULT_STREAM
    engine: str = "duckdb"
    error_stream: str = DEFAULT_ERROR_STREAM
    consumer: str = "splitlab-lake"
    lease_seconds: float = LEASE_SECONDS
    memory_limit: str | None = None


def sources(config: RunnerConfig) -> list[Callable[[], EventSource]]:
    """Openers of the sources the lake reads for ``config``."""
    if config.events_sink == "jetstream":
        from splitlab.results.consumer import JetStreamSource

        url = config.nats_url or "nats://127.0.0.1:4222"
        return [lambda: JetStreamSource(url, config.nats_stream, config.consumer,
                                        subject_prefix(config.nats_stream))]
    return log_sources(config.data_dir, config.events_sink, config.database_url,
                       config.table_prefix)


def build_scheduler(registry: Registry, config: RunnerConfig, holder: str | None = None
                    ) -> Scheduler:
    """A scheduler over ``<data dir>/lake`` storing its runs in ``registry``'s database (with
    DuckDB, reading each experiment's unit table beside the lake), holding the lease as
    ``holder`` (default a name of its own)."""
    lake = Lake(config.data_dir / LAKE_DIR, config.error_stream)

    memory = config.memory_limit or default_memory_limit()

    def engine() -> Engine:  # capped like the unit store, spilling beside the lake
        return open_engine(config.engine, memory, lake.root / ENGINE_SPILL)

    units = UnitStore(lake.root, memory_limit=memory) if config.engine == "duckdb" else None
    return Scheduler(registry, ResultsStore(registry.engine, registry.tables.prefix), lake,
                     sources(config), engine, lease_seconds=config.lease_seconds, units=units,
                     holder=holder)
