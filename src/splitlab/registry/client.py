"""A client of a running registry's HTTP API (what ``splitlab experiments ...`` uses).

Errors the server reports come back as :class:`RemoteError` carrying the HTTP status and the
server's one-line message. ``import_document`` is idempotent: rows equal to what is stored are
left alone, changed ones are patched with ``If-Match``, new ones created.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from splitlab.errors import ConfigError, RemoteError
from splitlab.registry import rules

KIND_PLURALS = {"layer": "layers", "holdout": "holdouts", "experiment": "experiments",
                "instrument": "instruments"}
"""Every kind, in the order import creates them (experiments name layers and holdouts)."""
VIEW_ONLY = ("status", "phases")
"""Fields the analytics format adds that are not part of a row."""


@dataclass(frozen=True, slots=True)
class Imported:
    """What import did with one row: ``created``, ``updated`` or ``unchanged``."""

    kind: str
    name: str
    action: str


def load_document(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows from a YAML or JSON file: a list of experiment rows, or
    ``{"experiments": [...], "instruments": [...], "layers": [...], "holdouts": [...]}`` (any of
    them). Raises :class:`ConfigError`."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError("", f"cannot read {path}: {error.strerror or error}") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError("", f"{path} is not valid JSON/YAML: {error}") from None
    if isinstance(document, list):
        document = {"experiments": document}
    if not isinstance(document, Mapping) or not set(document) <= set(KIND_PLURALS.values()):
        raise ConfigError("", f"{path}: expected a list of rows or {{experiments, instruments, "
                              f"layers, holdouts}}")
    out: dict[str, list[dict[str, Any]]] = {}
    for plural, rows in document.items():
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise ConfigError(plural, "must be a list of objects")
        out[plural] = [dict(r) for r in rows]
    return out


class RegistryClient:
    """Talks to ``url`` (e.g. ``http://127.0.0.1:8080``); ``token`` is needed for writes."""

    def __init__(self, url: str, token: str | None = None, actor: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"X-Splitlab-Actor": actor} if actor else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=10,
                                 transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any request to the server's API; a refusal raises :class:`RemoteError`."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise RemoteError(0, f"cannot reach {self.http.base_url}: {error}") from None
        if response.status_code >= 400:
            try:
                message = str(response.json()["message"])
            except (ValueError, KeyError, TypeError):
                message = response.text[:200] or response.reason_phrase
            raise RemoteError(response.status_code, message)
        return response

    def rows(self, kind: str, *, every: bool = True) -> list[dict[str, Any]]:
        """Every row (``format=analytics``: with status and phases), or only the active ones."""
        params = {"format": "analytics"} if every else {}
        data: list[dict[str, Any]] = self.call(
            "GET", f"/api/v1/{KIND_PLURALS[kind]}", params=params).json()
        return data

    def show(self, kind: str, name: str) -> tuple[dict[str, Any], str]:
        """The record (a layer's with its ``occupancy``) and its ETag."""
        response = self.call("GET", f"/api/v1/{KIND_PLURALS[kind]}/{name}")
        return response.json(), response.headers["etag"]

    def create(self, kind: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """Create a record."""
        created: dict[str, Any] = self.call(
            "POST", f"/api/v1/{KIND_PLURALS[kind]}", json=dict(row)).json()
        return created

    def update(self, kind: str, name: str, patch: Mapping[str, Any],
               etag: str | None = None) -> dict[str, Any]:
        """Patch a record (reading its current ETag first unless ``etag`` is given)."""
        if etag is None:
            _, etag = self.show(kind, name)
        updated: dict[str, Any] = self.call(
            "PATCH", f"/api/v1/{KIND_PLURALS[kind]}/{name}", json=dict(patch),
            headers={"If-Match": etag}).json()
        return updated

    def end(self, kind: str, name: str) -> dict[str, Any]:
        """End a running record now."""
        ended: dict[str, Any] = self.call(
            "POST", f"/api/v1/{KIND_PLURALS[kind]}/{name}/end").json()
        return ended

    def history(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Every change, oldest first."""
        entries: list[dict[str, Any]] = self.call(
            "GET", f"/api/v1/{KIND_PLURALS[kind]}/{name}/history").json()["history"]
        return entries

    def export_document(self) -> dict[str, list[dict[str, Any]]]:
        """Every record of every kind as importable rows."""
        return {plural: [{k: v for k, v in row.items() if k not in VIEW_ONLY}
                         for row in self.rows(kind)]
                for kind, plural in KIND_PLURALS.items()}

    def import_document(self, document: Mapping[str, list[dict[str, Any]]]) -> list[Imported]:
        """Create or update so the registry holds every row of ``document`` (idempotent)."""
        results: list[Imported] = []
        for kind, plural in KIND_PLURALS.items():
            for row in document.get(plural, []):
                results.append(self._import_row(kind, row))
        return results

    def _import_row(self, kind: str, row: dict[str, Any]) -> Imported:
        now = datetime.now(UTC)
        name = rules.normalize(kind, row, version=0, now=now)["name"]
        try:
            record, etag = self.show(kind, name)
        except RemoteError as error:
            if error.status != 404:
                raise
            self.create(kind, row)
            return Imported(kind, name, "created")
        if row.get("start") in (None, ""):  # "from creation": the start the server filled in
            row = {**row, "start": record["row"].get("start")}
        wanted = rules.normalize(kind, row, version=0, now=now)
        changes = rules.diff(record["row"], wanted)
        if not changes:
            return Imported(kind, name, "unchanged")
        self.update(kind, name, {field: new for field, (_, new) in changes.items()}, etag)
        return Imported(kind, name, "updated")
