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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs

from splitlab.errors import InvalidEventError
from splitlab.intake.formats import as_eventgate_accepts, replace_at
from splitlab.intake.schema_files import (
    BuiltinSchemas,
    Found,
    SchemaDirectory,
    SchemaSource,
    schema_error,
)
from splitlab.intake.violations import from_error, required, violation

MAX_MESSAGE = 300
MAX_ALIASES = 1000
MAX_SCHEMA_URI = 2000
LOCAL_BASE = "json-schema://"  # how jsonschema-rs spells a $ref to "/fragment/..." (no base URI)
_ID = re.compile(r"(?:/[A-Za-z0-9_][-A-Za-z0-9_]*)+/\d+\.\d+\.\d+")


def normalize_schema_id(uri: object) -> str:
    """The schema id an event's ``$schema`` value names; raises :class:`InvalidEventError`.

    The id is the only part of the value that reaches the file system, and only when it is
    ``/``-separated segments of ``[-A-Za-z0-9_]`` ending in ``X.Y.Z``: ``.``/``..`` segments,
    ``%``-escapes (encoded or doubly encoded dots and slashes), backslashes, empty segments and
    URLs whose scheme is not http(s) (``file:``, ...) are refused, never resolved.
    """
    if uri is None:
        raise InvalidEventError("$schema is missing", [required([], "$schema")])
    if not isinstance(uri, str) or not uri:
        raise schema_error("$schema must be a non-empty string")
    if len(uri) > MAX_SCHEMA_URI:
        raise schema_error(f"$schema is longer than {MAX_SCHEMA_URI} characters")
    text = uri[:-1] if uri.endswith("#") else uri
    if "://" in text:
        try:
            parts = urlsplit(text)
        except ValueError as error:  # e.g. an unclosed IPv6 host
            raise schema_error(f"$schema {uri[:200]!r} is not a URL: {error}") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise schema_error(f"$schema {uri[:200]!r} is refused: only a schema id or an "
                               "http(s) URL names a schema")
        text = parts.path
    marker = text.find("/jsonschema/")
    if marker >= 0:
        text = text[marker + len("/jsonschema"):]
    if not _ID.fullmatch(text):
        raise schema_error(
            f"$schema {uri[:200]!r} is not a schema id of the form /<title>/<major>.<minor>.<patch>"
        )
    return text


@dataclass(frozen=True, slots=True)
class Schema:
    """A loaded schema: its ``$id``, ``title``, compiled validator and the file it came from."""

    id: str
    title: str
    validator: jsonschema_rs.Draft7Validator
    location: str = ""

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


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of loading one schema file: its id, where it is, its title or the error."""

    id: str
    location: str
    title: str = ""
    error: str = ""


class SchemaRepository:
    """Schemas from an operator's schema repository (if any), then the built-in ones; each
    compiled on its first use and cached for the life of the process (thread-safe).

    A version is read once: versions are immutable (a changed schema is a new version), so a
    version added to the directory is found on its first use without a restart, while a file
    edited in place is not re-read. A ``$schema`` without a file is looked up again next time.
    """

    def __init__(self, sources: Sequence[SchemaSource] | None = None) -> None:
        self.sources = list(sources) if sources is not None else [BuiltinSchemas()]
        self._cache: dict[str, Schema] = {}
        self._aliases: dict[object, Schema] = {}
        self._lock = threading.Lock()

    @classmethod
    def with_directory(cls, directory: Path | None) -> SchemaRepository:
        """The repository of ``directory`` (``--schemas``), then the built-in schemas."""
        builtin = BuiltinSchemas()
        return cls([SchemaDirectory(directory), builtin] if directory is not None else [builtin])

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

    def loaded(self) -> list[Schema]:
        """The schemas compiled so far, by id."""
        return [self._cache[key] for key in sorted(self._cache)]

    def check(self) -> list[Checked]:
        """Load every schema file of every source (the first source of an id wins, as in
        :meth:`get`) and say, for each, its title or why it cannot be used."""
        seen: set[str] = set()
        results = []
        for source in self.sources:
            for schema_id in source.ids():
                if schema_id in seen:
                    continue
                seen.add(schema_id)
                try:
                    schema = self._get(schema_id)
                except InvalidEventError as error:
                    results.append(Checked(schema_id, source.label, error=str(error)))
                else:
                    results.append(Checked(schema_id, schema.location, schema.title))
        return sorted(results, key=lambda c: c.id)

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

    def _find(self, schema_id: str) -> Found | None:
        for source in self.sources:
            found = source.find(schema_id)
            if found is not None:
                return found
        return None

    def _load(self, schema_id: str) -> Schema:
        found = self._find(schema_id)
        if found is None:
            raise schema_error(f"schema not found: {schema_id[:200]}", {"schema": schema_id[:200]})
        return compile_schema(found.document, schema_id, found.location, self._retrieve)

    def _retrieve(self, uri: str) -> Any:
        """A ``$ref`` to another document (``/fragment/...``), looked up in the sources like a
        ``$schema`` (never fetched from the network)."""
        try:
            found = self._find(normalize_schema_id(uri.removeprefix(LOCAL_BASE)))
        except InvalidEventError as error:
            raise ValueError(f"$ref {uri[:200]}: {error}") from None
        if found is None:
            raise ValueError(f"$ref {uri[:200]} is not in the schema repository")
        return found.document


def compile_schema(
    document: Any, schema_id: str, location: str = "",
    retrieve: Callable[[str], Any] | None = None,
) -> Schema:
    """Compile a draft-07 schema document whose ``$id`` must be ``schema_id``; ``retrieve``
    fetches the documents its ``$ref`` s name."""
    if not isinstance(document, dict) or document.get("$id") != schema_id:
        raise schema_error(f"schema file for {schema_id} does not declare $id {schema_id}")
    try:
        validator = jsonschema_rs.Draft7Validator(
            document, validate_formats=True, retriever=retrieve)
    except (ValueError, jsonschema_rs.ReferencingError) as error:  # not a usable schema
        text = str(error).replace("\n", " ")[:MAX_MESSAGE]
        raise schema_error(f"schema {schema_id} cannot be compiled: {text}") from None
    return Schema(id=schema_id, title=str(document.get("title", "")), validator=validator,
                  location=location)
