"""Where schema documents come from: a directory laid out like Wikimedia's schema repositories,
and the schemas shipped inside the package.

A schema repository (``schemas-event-primary``, ``schemas-event-secondary``, or an operator's
own) keeps every version of a schema at ``jsonschema/<title>/<X.Y.Z>.yaml``, materialized (its
``$ref`` s to ``/fragment/...`` already merged in), next to a bare ``<X.Y.Z>`` symlink to it, the
hand-edited ``current.yaml`` and ``latest`` links. :class:`SchemaDirectory` reads such a checkout
(or its ``jsonschema`` folder, or any folder of ``<title>/<X.Y.Z>[.yaml|.yml|.json]`` files):
the id ``/a/b/1.0.0`` is the first of ``a/b/1.0.0.yaml``, ``.yml``, ``.json`` and ``a/b/1.0.0``
that exists. ``current`` and ``latest`` are never event schemas (ids end in a concrete version).

The id has already been checked to be ``/``-separated segments of ``[-A-Za-z0-9_]`` (no ``.``,
``..``, ``%``, ``\\`` or empty segment: :func:`splitlab.intake.schemas.normalize_schema_id`).
On top of that, the file found must lie inside the directory once every symlink is resolved: a
link (of the file or of a folder on the way) that leads out of it is refused with an
:class:`~splitlab.errors.InvalidEventError`, and nothing is read through it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

import orjson
import yaml

from splitlab.errors import ConfigError, InvalidEventError
from splitlab.intake.violations import violation

MAX_SCHEMA_BYTES = 4 * 1024 * 1024
SUFFIXES = (".yaml", ".yml", ".json", "")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_][-A-Za-z0-9_]*$")


def schema_error(message: str, params: dict[str, Any] | None = None) -> InvalidEventError:
    """An :class:`InvalidEventError` about the event's ``$schema`` (keyword ``schema``)."""
    return InvalidEventError(message, [violation("schema", ["$schema"], message, params)])


class _JsonYamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML's safe loader (libyaml's when built with it) without implicit timestamps: every
    value is one JSON can hold."""


_JsonYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_document(content: bytes, name: str) -> Any:
    """A schema document from JSON (``.json``) or YAML (anything else; JSON first when bare)."""
    if name.endswith(".json") or (not name.endswith((".yaml", ".yml")) and content[:1] == b"{"):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            if name.endswith(".json"):
                raise
    return yaml.load(content, Loader=_JsonYamlLoader)


@dataclass(frozen=True, slots=True)
class Found:
    """A schema document and where it was read from (``built-in``, or its file's path in the
    repository directory)."""

    document: Any
    location: str


class SchemaSource(Protocol):
    """A place schema documents are looked up in, by schema id."""

    label: str

    def find(self, schema_id: str) -> Found | None:
        """The document for ``schema_id``, or None; :class:`InvalidEventError` when it is
        unreadable or its file lies outside the source."""

    def ids(self) -> Iterator[str]:
        """Every schema id the source has a file for (for listing and checking)."""


def _read(path: Traversable, schema_id: str) -> bytes | None:
    try:
        if not path.is_file():
            return None
        content = path.read_bytes()
    except OSError:  # a name too long for the file system, a loop, no permission...
        return None
    if len(content) > MAX_SCHEMA_BYTES:
        raise schema_error(f"schema {schema_id} is larger than {MAX_SCHEMA_BYTES} bytes")
    return content


def _parsed(content: bytes, name: str, schema_id: str) -> Any:
    try:
        return parse_document(content, name)
    except (orjson.JSONDecodeError, yaml.YAMLError) as error:
        text = str(error).replace("\n", " ")[:300]
        raise schema_error(f"schema {schema_id} cannot be read: {text}") from None


class BuiltinSchemas:
    """The schemas shipped inside the package: ``<title>/<X.Y.Z>.json``."""

    label = "built-in"

    def __init__(self, root: Traversable | None = None) -> None:
        self.root = root if root is not None else files("splitlab").joinpath("data", "schemas")

    def find(self, schema_id: str) -> Found | None:
        parts = schema_id.strip("/").split("/")
        path = self.root.joinpath(*parts[:-1], parts[-1] + ".json")
        content = _read(path, schema_id)
        if content is None:
            return None
        return Found(_parsed(content, path.name, schema_id), "built-in")

    def ids(self) -> Iterator[str]:
        def walk(node: Traversable, prefix: str) -> Iterator[str]:
            for child in sorted(node.iterdir(), key=lambda c: c.name):
                if child.is_dir():
                    yield from walk(child, f"{prefix}/{child.name}")
                elif child.name.endswith(".json") and _VERSION.match(child.name[:-5]):
                    yield f"{prefix}/{child.name[:-5]}"

        yield from walk(self.root, "")


class SchemaDirectory:
    """A schema repository on disk (see the module docstring); links out of it are refused."""

    def __init__(self, path: Path) -> None:
        if not path.is_dir():
            raise ConfigError("SPLITLAB_SCHEMA_REPOSITORY", f"{path} is not a directory")
        inner = path / "jsonschema"
        self.path = inner if inner.is_dir() else path
        self.real = os.path.realpath(self.path)
        self.label = str(self.path)

    def _inside(self, candidate: str) -> bool:
        real = os.path.realpath(candidate)
        return real.startswith(self.real + os.sep)

    def find(self, schema_id: str) -> Found | None:
        folder = os.path.join(self.path, *schema_id.strip("/").split("/")[:-1])
        version = schema_id.rsplit("/", 1)[1]
        for suffix in SUFFIXES:
            candidate = os.path.join(folder, version + suffix)
            if not os.path.lexists(candidate):
                continue
            real = os.path.realpath(candidate)
            if not real.startswith(self.real + os.sep):
                raise schema_error(f"schema {schema_id} is refused: its file leads out of the "
                                   "schema repository", {"schema": schema_id})
            content = _read(Path(real), schema_id)  # the checked file, not the link again
            if content is not None:
                where = os.path.relpath(candidate, self.path).replace(os.sep, "/")
                return Found(_parsed(content, candidate, schema_id), where)
        return None

    def ids(self) -> Iterator[str]:
        seen: set[str] = set()
        for folder, dirs, names in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if _SEGMENT.match(d)
                             and self._inside(os.path.join(folder, d)))
            title = os.path.relpath(folder, self.path).replace(os.sep, "/")
            for name in sorted(names):
                stem = next((name[:-len(s)] for s in SUFFIXES[:-1] if name.endswith(s)), name)
                if title != "." and _VERSION.match(stem) and f"/{title}/{stem}" not in seen:
                    seen.add(f"/{title}/{stem}")
                    yield f"/{title}/{stem}"
