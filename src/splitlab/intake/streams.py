"""Stream configuration: which streams exist, what each accepts and keeps, and where it goes.

A stream config file (JSON, or YAML when PyYAML is installed) looks like::

    {"error_stream": "splitlab.error.validation",
     "streams": {
        "product_metrics.web_base": {"schema_title": "analytics/product_metrics/web/base",
                                     "enrich_headers": true, "keep_user_agent": false,
                                     "sink": "default"}}}

Without a file, :func:`default_catalog` applies: the two Test Kitchen streams and the error stream,
none of which keeps the user agent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from splitlab.errors import ConfigError

WEB_BASE_TITLE = "analytics/product_metrics/web/base"
ERROR_TITLE = "error"
ERROR_SCHEMA_ID = "/error/2.1.0"
DEFAULT_ERROR_STREAM = "splitlab.error.validation"
SINK_NAMES = frozenset({"default", "sqlite", "postgresql", "jetstream"})
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_][-A-Za-z0-9_.]{0,254}$")
_KEYS = frozenset({"schema_title", "enrich_headers", "keep_user_agent", "sink"})


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """One stream: the schema title it accepts and what the intake adds to or keeps on events.

    ``enrich_headers``: set ``meta.request_id`` from the ``x-request-id`` header.
    ``keep_user_agent``: set ``http.request_headers.user-agent`` from the ``user-agent`` header;
    when false any user agent is removed from the event. ``sink``: which sink stores it.
    """

    name: str
    schema_title: str
    enrich_headers: bool = True
    keep_user_agent: bool = False
    sink: str = "default"


@dataclass(frozen=True, slots=True)
class StreamCatalog:
    """All configured streams, and the one that receives error events."""

    streams: Mapping[str, StreamConfig]
    error_stream: str = DEFAULT_ERROR_STREAM
    sinks: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        error = self.streams.get(self.error_stream)
        if error is None:
            raise ConfigError("error_stream", f"stream {self.error_stream!r} is not configured")
        if error.schema_title != ERROR_TITLE:
            raise ConfigError("error_stream", f"its schema_title must be {ERROR_TITLE!r}")
        object.__setattr__(self, "sinks", frozenset(s.sink for s in self.streams.values()))

    def get(self, name: str) -> StreamConfig | None:
        """The config of stream ``name``, or None when it is not configured."""
        return self.streams.get(name)

    @property
    def error(self) -> StreamConfig:
        """The error stream's config."""
        return self.streams[self.error_stream]


def default_catalog() -> StreamCatalog:
    """The built-in streams: Test Kitchen's two product-metrics streams and the error stream."""
    streams = [
        StreamConfig("product_metrics.web_base", WEB_BASE_TITLE),
        StreamConfig("product_metrics.experiment_enrollment", WEB_BASE_TITLE),
        StreamConfig(DEFAULT_ERROR_STREAM, ERROR_TITLE, enrich_headers=False),
    ]
    return StreamCatalog({s.name: s for s in streams})


def _stream_from(name: str, entry: Any) -> StreamConfig:
    where = f"streams.{name}"
    if not isinstance(name, str) or not _STREAM_NAME.match(name):
        raise ConfigError("streams", f"{name!r} is not a valid stream name")
    if not isinstance(entry, dict):
        raise ConfigError(where, "must be an object")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ConfigError(where, f"unknown keys {unknown} (allowed: {sorted(_KEYS)})")
    title = entry.get("schema_title")
    if not isinstance(title, str) or not title:
        raise ConfigError(f"{where}.schema_title", "must be a non-empty string")
    flags = {}
    for key, default in (("enrich_headers", True), ("keep_user_agent", False)):
        value = entry.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{key}", "must be true or false")
        flags[key] = value
    sink = entry.get("sink", "default")
    if sink not in SINK_NAMES:
        raise ConfigError(f"{where}.sink", f"must be one of {sorted(SINK_NAMES)}")
    return StreamConfig(name, title, flags["enrich_headers"], flags["keep_user_agent"], sink)


def catalog_from_document(document: Any) -> StreamCatalog:
    """A catalog from a parsed config document; raises :class:`ConfigError` naming the field."""
    if not isinstance(document, dict):
        raise ConfigError("", "a stream config must be an object with 'streams'")
    entries = document.get("streams")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError("streams", "must be a non-empty object of stream name to config")
    error_stream = document.get("error_stream", DEFAULT_ERROR_STREAM)
    if not isinstance(error_stream, str):
        raise ConfigError("error_stream", "must be a string")
    streams = {name: _stream_from(name, entry) for name, entry in entries.items()}
    return StreamCatalog(streams, error_stream)


def load_catalog(path: Path | None) -> StreamCatalog:
    """The catalog in ``path`` (JSON, or YAML by extension), or the default one when None."""
    if path is None:
        return default_catalog()
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError("", f"cannot read stream config {path}: {error.strerror}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            document = yaml.safe_load(raw)
        else:
            document = orjson.loads(raw)
    except Exception as error:  # any parser's error: the file is not a document
        raise ConfigError("", f"stream config {path} cannot be parsed: {error}") from None
    return catalog_from_document(document)
