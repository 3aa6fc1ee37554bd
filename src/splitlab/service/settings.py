"""Service settings, read from the environment (``splitlab serve`` sets them from its flags).

| variable | meaning | default |
| --- | --- | --- |
| ``SPLITLAB_DATA_DIR`` | the SQLite files, keys and spool (owner only) | ``.splitlab/data`` |
| ``SPLITLAB_DATABASE_URL`` | ``postgresql://...`` to use PostgreSQL instead of SQLite | unset |
| ``SPLITLAB_NATS_URL`` | NATS JetStream for events at scale | unset |
| ``SPLITLAB_NATS_STREAM`` | JetStream stream (default subjects ``splitlab.events``) | default |
| ``SPLITLAB_ADMIN_TOKEN`` | bearer token for writes; generated on first start when unset | unset |
| ``SPLITLAB_DEMO`` | ``1`` seeds a few realistic experiments on first start | unset |
| ``SPLITLAB_TABLE_PREFIX`` | registry table name prefix (isolates test runs) | empty |
| ``SPLITLAB_SITE_CATALOG`` | site catalog: database name → domain (JSON or dblist) | built-in |
| ``SPLITLAB_STREAMS_FILE`` | event stream config (JSON or YAML) | built-in streams |
| ``SPLITLAB_SCHEMA_REPOSITORY`` | schema repository checkout, before the built-in schemas | unset |
| ``SPLITLAB_EVENTS_SINK`` | the ``default`` event sink: sqlite, postgresql, jetstream | sqlite |
| ``SPLITLAB_EVENTS_MAX_BODY`` | largest ``POST /v1/events`` body, bytes (larger: 413) | 4 MiB |
| ``SPLITLAB_EVENTS_HASTY_QUEUE`` | events ``?hasty=true`` may queue (more: sync) | 10000 |
| ``SPLITLAB_EVENTS_SINK_TIMEOUT`` | seconds a request waits for a remote sink, then spools | 0.5 |
| ``SPLITLAB_EVENTS_MAX_IN_FLIGHT`` | events a worker may hold being stored before 503 | 20000 |
| ``SPLITLAB_EVENTS_CORS_ORIGINS`` | page origins allowed by CORS (comma-separated; ``*``) | none |
| ``SPLITLAB_CLIENT_EXPERIMENTS`` | comma-separated names of the client experiments | all |
| ``SPLITLAB_CLIENT_API_KEY`` | key for OFREP and payloads (Bearer or X-API-Key) | open |
| ``SPLITLAB_CLIENT_NAME_SALT`` | non-empty: client payloads carry hashed experiment names | unset |
| ``SPLITLAB_OFREP_RATE_LIMIT`` | OFREP requests per second per client (0: no limit) | ``0`` |
| ``SPLITLAB_RESULTS_INTERVAL`` | seconds between results runs in the service (0: off) | ``300`` |
| ``SPLITLAB_RESULTS_MEMORY`` | memory the results' DuckDB may use (e.g. ``4GB``) | 25% of RAM |
| ``SPLITLAB_UI_REQUIRE_TOKEN`` | ``1``: reading the dashboard needs signing in too | unset |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from splitlab.datadir import data_dir as find_data_dir
from splitlab.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service needs to know to start."""

    data_dir: Path
    database_url: str | None = None
    nats_url: str | None = None
    nats_stream: str = "SPLITLAB_EVENTS"
    admin_token: str | None = None
    demo: bool = False
    table_prefix: str = ""
    site_catalog: Path | None = None
    streams_file: Path | None = None
    schema_repository: Path | None = None
    events_sink: str = "sqlite"
    events_max_body: int = 4 * 1024 * 1024
    events_hasty_queue: int = 10_000
    events_sink_timeout: float = 0.5
    events_max_in_flight: int = 20_000
    events_cors_origins: frozenset[str] = frozenset()
    client_experiments: frozenset[str] | None = None
    client_api_key: str | None = None
    client_name_salt: str = ""
    ofrep_rate_limit: float = 0.0
    results_interval: float = 0.0
    """Seconds between results runs; 0 (the default here, 300 from the environment): none."""
    results_memory: str | None = None
    """The scheduler's DuckDB memory limit, for the unit store and the engine (``None``:
    :func:`~splitlab.results.units.default_memory_limit`)."""
    ui_require_token: bool = False
    """Whether reading the dashboard needs a session (writing always does)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (default: the process environment)."""
        source = os.environ if env is None else env
        return cls(
            data_dir=find_data_dir(None, source),
            database_url=source.get("SPLITLAB_DATABASE_URL") or None,
            nats_url=source.get("SPLITLAB_NATS_URL") or None,
            nats_stream=source.get("SPLITLAB_NATS_STREAM") or "SPLITLAB_EVENTS",
            admin_token=source.get("SPLITLAB_ADMIN_TOKEN") or None,
            demo=source.get("SPLITLAB_DEMO") == "1",
            table_prefix=source.get("SPLITLAB_TABLE_PREFIX", ""),
            site_catalog=Path(f) if (f := source.get("SPLITLAB_SITE_CATALOG")) else None,
            streams_file=Path(f) if (f := source.get("SPLITLAB_STREAMS_FILE")) else None,
            schema_repository=Path(f) if (f := source.get("SPLITLAB_SCHEMA_REPOSITORY")) else None,
            events_sink=source.get("SPLITLAB_EVENTS_SINK") or "sqlite",
            events_max_body=_positive(source, "SPLITLAB_EVENTS_MAX_BODY", 4 * 1024 * 1024),
            events_hasty_queue=_positive(source, "SPLITLAB_EVENTS_HASTY_QUEUE", 10_000),
            events_sink_timeout=_deadline(source, "SPLITLAB_EVENTS_SINK_TIMEOUT", 0.5),
            events_max_in_flight=_positive(source, "SPLITLAB_EVENTS_MAX_IN_FLIGHT", 20_000),
            events_cors_origins=_name_set(source.get("SPLITLAB_EVENTS_CORS_ORIGINS"))
            or frozenset(),
            client_experiments=_name_set(source.get("SPLITLAB_CLIENT_EXPERIMENTS")),
            client_api_key=source.get("SPLITLAB_CLIENT_API_KEY") or None,
            client_name_salt=source.get("SPLITLAB_CLIENT_NAME_SALT", ""),
            ofrep_rate_limit=_float(source, "SPLITLAB_OFREP_RATE_LIMIT"),
            results_interval=_float(source, "SPLITLAB_RESULTS_INTERVAL", "300"),
            results_memory=_memory(source, "SPLITLAB_RESULTS_MEMORY"),
            ui_require_token=source.get("SPLITLAB_UI_REQUIRE_TOKEN") == "1",
        )


def _positive(source: Mapping[str, str], name: str, default: int) -> int:
    """A positive integer setting; :class:`ConfigError` naming the variable when it is not."""
    text = source.get(name)
    if not text:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise ConfigError(name, f"must be a positive integer, not {text!r}")
    return int(text)


def _name_set(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def _float(source: Mapping[str, str], name: str, default: str = "0") -> float:
    text = source.get(name, default) or default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {text!r}")
    return value


_MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([KMGT]?)(i?)B", re.IGNORECASE)
_LEAST_MEMORY = 64 << 20
"""Less than this leaves DuckDB unable to run a query at all."""


def _memory(source: Mapping[str, str], name: str) -> str | None:
    """The amount of memory the variable ``name`` gives (:func:`memory_amount`), or None."""
    text = (source.get(name) or "").strip()
    return memory_amount(text, name) if text else None


def memory_amount(text: str, name: str) -> str:
    """``text`` when it is an amount of memory as DuckDB reads it (``4GB``, ``512MiB``) of at
    least 64 MiB; :class:`ConfigError` naming the setting ``name`` otherwise."""
    amount = _MEMORY.fullmatch(text)
    power = "KMGT".find(amount[2].upper()) + 1 if amount else 0
    if amount is None or float(amount[1]) * (1024 if amount[3] else 1000) ** power < _LEAST_MEMORY:
        raise ConfigError(name, "must be an amount of memory of at least 64MiB, such as 4GB or "
                                f"512MiB, not {text!r}")
    return text


def _deadline(source: Mapping[str, str], name: str, default: float) -> float:
    """Seconds, more than 0 and at most 60; :class:`ConfigError` naming the variable otherwise."""
    text = source.get(name) or str(default)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 60:
        raise ConfigError(name, f"must be more than 0 and at most 60 seconds, not {text!r}")
    return value
