"""The schema repository: JSON Schema (draft-07) files addressed by their ``$schema`` id.

An event names the exact schema version it claims in ``$schema``, e.g.
``/analytics/product_metrics/web/base/1.3.0``. The repository maps that id to
``<root>/analytics/product_metrics/web/base/1.3.0.json`` in the first root that has it (like
EventGate's ``schema_base_uris``), checks that the file's ``$id`` is that id, compiles it once and
caches the compiled validator. An id without a file is "schema not found" — never a neighbouring
version. Full URLs (``https://host/.../jsonschema/<id>``) and a trailing ``#`` are accepted.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
import orjson

from splitlab.errors import InvalidEventError

MAX_MESSAGE = 300
MAX_ALIASES = 1000
_ID = re.compile(r"^(?:/[A-Za-z0-9_][-A-Za-z0-9_]*)+/\d+\.\d+\.\d+$")


def builtin_schema_root() -> Traversable:
    """The folder of schemas shipped inside the package (web base 1.3.0 and 2.1.0, error)."""
    return files("splitlab").joinpath("data", "schemas")


def normalize_schema_id(uri: object) -> str:
    """The schema id an event's ``$schema`` value names; raises :class:`InvalidEventError`."""
    if not isinstance(uri, str) or not uri:
        raise InvalidEventError("$schema must be a non-empty string")
    text = uri[:-1] if uri.endswith("#") else uri
    if "://" in text:
        text = urlsplit(text).path
    marker = text.find("/jsonschema/")
    if marker >= 0:
        text = text[marker + len("/jsonschema"):]
    if not _ID.match(text):
        raise InvalidEventError(
            f"$schema {uri[:200]!r} is not a schema id of the form /<title>/<major>.<minor>.<patch>"
        )
    return text


@dataclass(frozen=True, slots=True)
class Schema:
    """A loaded schema: its ``$id``, ``title`` and compiled validator."""

    id: str
    title: str
    validator: jsonschema_rs.Draft7Validator

    def validate(self, event: Any) -> None:
        """Raise :class:`InvalidEventError` naming the first violation, if ``event`` has one."""
        try:
            self.validator.validate(event)
        except jsonschema_rs.ValidationError as error:
            where = ".".join(str(part) for part in error.instance_path) or "the event"
            text = error.message
            if len(text) > MAX_MESSAGE:
                text = text[:MAX_MESSAGE] + "..."
            raise InvalidEventError(f"{where}: {text} (schema {self.id})") from None
        except ValueError as error:  # the validator's own limits, e.g. nesting depth
            raise InvalidEventError(f"the event cannot be validated: {error}") from None


class SchemaRepository:
    """Schemas from one or more folders, compiled on first use and cached (thread-safe)."""

    def __init__(self, roots: Sequence[Traversable] | None = None) -> None:
        self._roots = list(roots) if roots is not None else [builtin_schema_root()]
        self._cache: dict[str, Schema] = {}
        self._aliases: dict[object, Schema] = {}
        self._lock = threading.Lock()

    def get(self, uri: object) -> Schema:
        """The schema ``uri`` names; :class:`InvalidEventError` when it is unknown or broken."""
        if isinstance(uri, str):
            known = self._aliases.get(uri)
            if known is not None:
                return known
        schema = self._get(uri)
        if len(self._aliases) < MAX_ALIASES and isinstance(uri, str) and len(uri) <= 256:
            self._aliases[uri] = schema  # bounded in count and size: clients choose the spelling
        return schema

    def _get(self, uri: object) -> Schema:
        schema_id = normalize_schema_id(uri)
        cached = self._cache.get(schema_id)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._cache.get(schema_id)
            if cached is None:
                cached = self._load(schema_id)
                self._cache[schema_id] = cached
        return cached

    def _load(self, schema_id: str) -> Schema:
        parts = schema_id.strip("/").split("/")
        parts[-1] += ".json"
        for root in self._roots:
            path = root.joinpath(*parts)
            if path.is_file():
                document = orjson.loads(path.read_bytes())
                return compile_schema(document, schema_id)
        raise InvalidEventError(f"schema not found: {schema_id}")


def compile_schema(document: Any, schema_id: str) -> Schema:
    """Compile a draft-07 schema document whose ``$id`` must be ``schema_id``."""
    if not isinstance(document, dict) or document.get("$id") != schema_id:
        raise InvalidEventError(f"schema file for {schema_id} does not declare $id {schema_id}")
    validator = jsonschema_rs.Draft7Validator(document, validate_formats=True)
    return Schema(id=schema_id, title=str(document.get("title", "")), validator=validator)
