"""The schema repository: JSON Schema (draft-07) files addressed by their ``$schema`` id.

An event names the exact schema version it claims in ``$schema``, e.g.
``/analytics/product_metrics/web/base/1.3.0``. The repository maps that id to
``<root>/analytics/product_metrics/web/base/1.3.0.json`` in the first root that has it (like
EventGate's ``schema_base_uris``), checks that the file's ``$id`` is that id, compiles it once and
caches the compiled validator. An id without a file is "schema not found" — never a neighbouring
version. Full URLs (``https://host/.../jsonschema/<id>``) and a trailing ``#`` are accepted.
Whatever a client writes in ``$schema`` (too long for a file name, not a URL, ...), the answer is
an :class:`InvalidEventError` for that event, never another exception.

Validation reports every violation (:mod:`splitlab.intake.violations`) and checks ``date-time``,
``uri`` and ``uri-reference`` as EventGate does (:mod:`splitlab.intake.formats`).
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
from splitlab.intake.formats import as_eventgate_accepts, replace_at
from splitlab.intake.violations import from_error, required, violation

MAX_MESSAGE = 300
MAX_ALIASES = 1000
MAX_SCHEMA_URI = 2000
_ID = re.compile(r"^(?:/[A-Za-z0-9_][-A-Za-z0-9_]*)+/\d+\.\d+\.\d+$")


def builtin_schema_root() -> Traversable:
    """The folder of schemas shipped inside the package (web base 1.3.0 and 2.1.0, error)."""
    return files("splitlab").joinpath("data", "schemas")


def schema_error(message: str, params: dict[str, Any] | None = None) -> InvalidEventError:
    """An :class:`InvalidEventError` about the event's ``$schema`` (keyword ``schema``)."""
    return InvalidEventError(message, [violation("schema", ["$schema"], message, params)])


def normalize_schema_id(uri: object) -> str:
    """The schema id an event's ``$schema`` value names; raises :class:`InvalidEventError`."""
    if uri is None:
        raise InvalidEventError("$schema is missing", [required([], "$schema")])
    if not isinstance(uri, str) or not uri:
        raise schema_error("$schema must be a non-empty string")
    if len(uri) > MAX_SCHEMA_URI:
        raise schema_error(f"$schema is longer than {MAX_SCHEMA_URI} characters")
    text = uri[:-1] if uri.endswith("#") else uri
    if "://" in text:
        try:
            text = urlsplit(text).path
        except ValueError as error:  # e.g. an unclosed IPv6 host
            raise schema_error(f"$schema {uri[:200]!r} is not a URL: {error}") from None
    marker = text.find("/jsonschema/")
    if marker >= 0:
        text = text[marker + len("/jsonschema"):]
    if not _ID.match(text):
        raise schema_error(
            f"$schema {uri[:200]!r} is not a schema id of the form /<title>/<major>.<minor>.<patch>"
        )
    return text


@dataclass(frozen=True, slots=True)
class Schema:
    """A loaded schema: its ``$id``, ``title`` and compiled validator."""

    id: str
    title: str
    validator: jsonschema_rs.Draft7Validator

    def validate(self, event: Any) -> Any:
        """``event`` as it is to be stored: itself, or a copy whose ``date-time`` values in
        EventGate's other forms are rewritten as RFC 3339 in UTC.

        Raises :class:`InvalidEventError` with every violation; its message names the first.
        """
        try:
            self.validator.validate(event)
            return event
        except jsonschema_rs.ValidationError:
            pass
        except ValueError as error:  # the validator's own limits, e.g. nesting depth
            raise self._unvalidatable(error) from None
        try:
            fixed, errors = self._eventgate_errors(event)
            if fixed is not event and (errors or not self.validator.is_valid(fixed)):
                fixed, errors = self._eventgate_errors(fixed)
        except ValueError as error:
            raise self._unvalidatable(error) from None
        if not errors:
            return fixed
        first = errors[0]
        where = ".".join(str(part) for part in first.instance_path) or "the event"
        text = first.message
        if len(text) > MAX_MESSAGE:
            text = text[:MAX_MESSAGE] + "..."
        raise InvalidEventError(f"{where}: {text} (schema {self.id})",
                                [v for found in errors for v in from_error(found)])

    def _eventgate_errors(self, event: Any) -> tuple[Any, list[jsonschema_rs.ValidationError]]:
        """``event`` with the format values EventGate accepts normalised, and the errors that
        remain (strict format errors on values EventGate accepts are not errors)."""
        fixed, remaining = event, []
        for found in self.validator.iter_errors(event):
            kind = found.kind
            if (isinstance(kind, jsonschema_rs.ValidationErrorKind.Format)
                    and isinstance(found.instance, str)):
                value = as_eventgate_accepts(kind.format, found.instance)
                if value is not None:
                    if value != found.instance:
                        fixed = replace_at(fixed, found.instance_path, value)
                    continue
            remaining.append(found)
        return fixed, remaining

    @staticmethod
    def _unvalidatable(error: ValueError) -> InvalidEventError:
        message = f"the event cannot be validated: {error}"
        return InvalidEventError(message, [violation("depth", [], message)])


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
            try:
                if not path.is_file():
                    continue
                content = path.read_bytes()
            except OSError:  # a name too long for the file system, a loop, no permission...
                continue
            try:
                document = orjson.loads(content)
            except orjson.JSONDecodeError as error:
                raise schema_error(f"schema {schema_id} cannot be read: {error}") from None
            return compile_schema(document, schema_id)
        raise schema_error(f"schema not found: {schema_id[:200]}", {"schema": schema_id[:200]})


def compile_schema(document: Any, schema_id: str) -> Schema:
    """Compile a draft-07 schema document whose ``$id`` must be ``schema_id``."""
    if not isinstance(document, dict) or document.get("$id") != schema_id:
        raise schema_error(f"schema file for {schema_id} does not declare $id {schema_id}")
    try:
        validator = jsonschema_rs.Draft7Validator(document, validate_formats=True)
    except ValueError as error:  # not a valid draft-07 schema
        raise schema_error(f"schema {schema_id} cannot be compiled: {error}") from None
    return Schema(id=schema_id, title=str(document.get("title", "")), validator=validator)
