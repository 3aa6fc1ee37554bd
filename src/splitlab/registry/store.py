"""The registry store: experiments, instruments, layers and holdouts with an immutable history
of every change.

Every write runs in one transaction that updates the current row, appends a history entry (who,
when, what changed, the whole new row) and bumps a change counter that readers in other processes
poll cheaply. Nothing is ever deleted: ending an experiment sets its ``end`` and keeps it.
Concurrent edits use optimistic concurrency: each record has a strong ETag, and a write that
names a stale one fails with :class:`PreconditionFailedError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from splitlab.core.model import Experiment, canonical_json, format_time, parse_time
from splitlab.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    PreconditionRequiredError,
)
from splitlab.registry import references, rules, traffic_guard
from splitlab.registry.schema import KINDS, Tables, engine_for, migrate
from splitlab.registry.sites import SiteCatalog

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Record:
    """The current state of one experiment or instrument."""

    kind: str
    name: str
    revision: int
    row: dict[str, Any]
    etag: str
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class Change:
    """One history entry: ``action`` is ``create``, ``update`` or ``end``; ``changes`` maps each
    changed field to ``[old, new]``; ``row`` is the whole row after the change."""

    revision: int
    at: datetime
    actor: str
    action: str
    row: dict[str, Any]
    changes: dict[str, list[Any]]

    def to_json(self) -> dict[str, Any]:
        """The wire form used by the history endpoint."""
        return {"revision": self.revision, "at": format_time(self.at), "actor": self.actor,
                "action": self.action, "changes": self.changes, "row": self.row}


def etag_for(revision: int, row_text: str) -> str:
    """A strong ETag (quoted) that changes with every revision and every byte of the row."""
    digest = hashlib.sha256(row_text.encode("utf-8")).hexdigest()[:16]
    return f'"{revision}-{digest}"'


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise TypeError(f"kind must be one of {KINDS}, got {kind!r}")


class Registry:
    """The store. Thread-safe (each call uses its own connection); close it with :meth:`close`.

    ``sites`` is the site catalog: an ``edge-unique`` row naming a site it does not know is
    refused on save, and the edge config maps sites to domains with it (default: built-in)."""

    def __init__(self, engine: Engine, tables: Tables, clock: Clock = _utc_now,
                 sites: SiteCatalog | None = None) -> None:
        self.engine = engine
        self.tables = tables
        self.clock = clock
        self.sites = sites if sites is not None else SiteCatalog.builtin()

    @classmethod
    def open(cls, database_url: str | None, data_dir: Path, *, prefix: str = "",
             clock: Clock = _utc_now, sites: SiteCatalog | None = None) -> Registry:
        """Connect (PostgreSQL URL, or SQLite in ``data_dir``) and apply pending migrations."""
        tables = Tables.build(prefix)
        engine = engine_for(database_url, data_dir)
        try:
            migrate(engine, tables)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, tables, clock, sites)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def _record(self, r: Row[Any]) -> Record:
        return Record(kind=r.kind, name=r.name, revision=r.revision, row=json.loads(r.row),
                      etag=etag_for(r.revision, r.row),
                      created_at=as_utc(r.created_at), updated_at=as_utc(r.updated_at),
                      ended_at=None if r.ended_at is None else as_utc(r.ended_at))

    def _select(self, conn: Connection, kind: str, name: str) -> Row[Any]:
        objects = self.tables.objects
        found = conn.execute(
            select(objects).where(objects.c.kind == kind, objects.c.name == name)
        ).first()
        if found is None:
            raise NotFoundError(f"no {kind} named {name!r}")
        return found

    def _write(self, conn: Connection, object_id: int, entry: dict[str, Any]) -> None:
        """Append a history entry and bump the change counter, in the caller's transaction."""
        conn.execute(insert(self.tables.history).values(object_id=object_id, **entry))
        state = self.tables.state
        conn.execute(update(state).where(state.c.id == 1)
                     .values(change_counter=state.c.change_counter + 1))

    def _catalog(self, conn: Connection, kind: str, object_id: int | None, *,
                 write: bool = True) -> references.Catalog:
        """The layers, holdouts and other experiments a write of ``kind`` checks against (none
        for instruments). On PostgreSQL an advisory lock first serializes these writes, so two
        of them never both take the same free range or miss each other's reference."""
        objects = self.tables.objects
        if kind == "instrument":
            return references.Catalog({}, {}, ())
        if write and self.engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                         {"key": f"{self.tables.prefix}references"})
        found = conn.execute(select(objects.c.id, objects.c.kind, objects.c.row).where(
            objects.c.kind.in_(("experiment", *rules.ENTITY_KINDS))))
        rows: dict[str, dict[str, dict[str, Any]]] = {"layer": {}, "holdout": {}}
        experiments: list[dict[str, Any]] = []
        for row_id, row_kind, row_text in found:
            row = json.loads(row_text)
            if row_kind == "experiment":
                if row_id != object_id:
                    experiments.append(row)
            else:
                rows[row_kind][row["name"]] = row
        return references.Catalog(rows["layer"], rows["holdout"], experiments)

    def create(self, kind: str, row: Mapping[str, Any], actor: str) -> Record:
        """Create a new record of ``kind`` at revision 1.

        Raises :class:`ConfigError` for an invalid row, :class:`ConflictError` when the name is
        taken (ended ones included: names are never reused).
        """
        _check_kind(kind)
        now = self.clock()
        objects = self.tables.objects
        try:
            with self.engine.begin() as conn:
                catalog = self._catalog(conn, kind, None)
                stored = self._checked(kind, row, None, catalog, now, version=1)
                stored_text = canonical_json(stored)
                result = conn.execute(insert(objects).values(
                    kind=kind, name=stored["name"], revision=1, row=stored_text, created_at=now,
                    updated_at=now, ended_at=None))
                object_id = result.inserted_primary_key[0] if result.inserted_primary_key else 0
                self._write(conn, int(object_id), {
                    "revision": 1, "at": now, "actor": actor, "action": "create",
                    "row": stored_text, "changes": canonical_json(rules.diff({}, stored))})
                return self._record(self._select(conn, kind, stored["name"]))
        except IntegrityError:
            raise ConflictError(
                f"a {kind} named {row.get('name')!r} already exists (ended ones keep their "
                "names)") from None

    def _checked(self, kind: str, row: Mapping[str, Any], old: dict[str, Any] | None,
                 catalog: references.Catalog, now: datetime, *, version: int,
                 action: str = "create") -> dict[str, Any]:
        """``row`` resolved against the catalog, normalized and checked against every rule
        (the site catalog, the rules of started experiments, layers and references)."""
        # ending only shortens: nothing to resolve; a body that is no object: normalize says so
        if kind == "experiment" and action != "end" and isinstance(row, Mapping):
            row = references.resolve_experiment(row, old, catalog, now)
        stored = rules.normalize(kind, row, version=version, now=now)
        if action != "end":  # a site dropped from the catalog must not block ending
            self.sites.check(stored)
        if old is not None:
            rules.check_change(kind, old, stored, now)
        if kind == "experiment" and stored.get("layer") is not None:
            traffic_guard.check_layer_overlap(Experiment.from_config(stored),
                                              catalog.experiments)
        return stored

    def get(self, kind: str, name: str) -> Record:
        """The current record (raises :class:`NotFoundError`)."""
        _check_kind(kind)
        with self.engine.connect() as conn:
            return self._record(self._select(conn, kind, name))

    def records(self, kind: str) -> list[Record]:
        """Every record of ``kind``, ended ones included, by name."""
        _check_kind(kind)
        objects = self.tables.objects
        with self.engine.connect() as conn:
            found = conn.execute(select(objects).where(objects.c.kind == kind)
                                 .order_by(objects.c.name))
            return [self._record(r) for r in found]

    def update(self, kind: str, name: str, patch: Mapping[str, Any], if_match: str | None,
               actor: str) -> Record:
        """Apply a partial update, guarded by ``if_match`` (the ETag the caller last saw).

        Raises :class:`PreconditionRequiredError` without ``if_match`` or with ``*`` (which
        would match any revision), :class:`PreconditionFailedError` when it is stale,
        :class:`ConflictError` for an edit the rules forbid, :class:`ConfigError` when the
        result is invalid.
        """
        _check_kind(kind)
        return self._change(kind, name, if_match, actor,
                            lambda old, _now: rules.merge_patch(old, patch))

    def end(self, kind: str, name: str, if_match: str | None, actor: str) -> Record:
        """End a running record now (its ``end`` becomes now; kept forever).

        ``if_match`` is optional here. Raises :class:`ConflictError` when it has not started or
        has already ended, or (a layer or holdout) while an experiment that uses it runs on.
        """
        _check_kind(kind)

        def ended(old: dict[str, Any], now: datetime) -> dict[str, Any]:
            if not rules.has_started(old, now):
                raise ConflictError(f"{kind} {name!r} has not started; edit its start and end "
                                    "instead of ending it")
            end = parse_time(old.get("end"), "end")
            if end is not None and end <= now:  # it ends by now: ending it now changes nothing
                raise ConflictError(f"{kind} {name!r} already ended at {format_time(end)}")
            return rules.merge_patch(old, {"end": format_time(now)})

        return self._change(kind, name, if_match, actor, ended, action="end", require_match=False)

    def _change(self, kind: str, name: str, if_match: str | None, actor: str,
                make: Callable[[dict[str, Any], datetime], dict[str, Any]], *,
                action: str = "update",
                require_match: bool = True) -> Record:
        if if_match is None and require_match:
            raise PreconditionRequiredError(
                f"updating {kind} {name!r} needs If-Match with its current ETag")
        if require_match and if_match is not None and if_match.strip() == "*":
            raise PreconditionRequiredError(
                f"updating {kind} {name!r} needs If-Match with its current ETag, not '*': '*' "
                "matches any revision, so it would overwrite a change you have not seen")
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                current = self._select(conn, kind, name)
                etag = etag_for(current.revision, current.row)
                if if_match is not None and if_match.strip() not in (etag, "*"):
                    raise PreconditionFailedError(
                        f"{kind} {name!r} changed since you read it (If-Match {if_match}, "
                        f"current ETag {etag}); read it again and retry")
                old = json.loads(current.row)
                catalog = self._catalog(conn, kind, current.id)
                new = self._checked(kind, make(old, now), old, catalog, now,
                                    version=current.revision + 1, action=action)
                follow: list[Mapping[str, Any]] = []
                if kind in rules.ENTITY_KINDS:
                    follow = references.check_entity_change(kind, old, new, catalog.experiments,
                                                            now)
                record = self._revise(conn, kind, current, new, actor, action, now)
                for row in follow:  # scheduled experiments carry the holdout's new percent
                    moved = references.with_percent(row, name, new["percent"])
                    following = self._select(conn, "experiment", row["name"])
                    self._revise(conn, "experiment", following, rules.normalize(
                        "experiment", moved, version=following.revision + 1, now=now),
                        actor, "update", now)
                return record
        except IntegrityError:
            raise ConflictError(f"a {kind} with that name already exists") from None

    def _revise(self, conn: Connection, kind: str, current: Row[Any], new: dict[str, Any],
                actor: str, action: str, now: datetime) -> Record:
        """Store ``new`` as the next revision of ``current`` with its history entry."""
        old = json.loads(current.row)
        changes = rules.diff(old, new)
        if not changes:
            raise ConfigError("", "the change sets every field to its current value")
        stored_text = canonical_json(new)
        ended_at = now if action == "end" else current.ended_at
        objects = self.tables.objects
        done = conn.execute(update(objects).where(
            objects.c.id == current.id, objects.c.revision == current.revision,
        ).values(name=new["name"], revision=current.revision + 1, row=stored_text, updated_at=now,
                 ended_at=ended_at))
        if done.rowcount != 1:
            raise PreconditionFailedError(f"{kind} {current.name!r} changed concurrently; retry")
        self._write(conn, current.id, {
            "revision": current.revision + 1, "at": now, "actor": actor, "action": action,
            "row": stored_text, "changes": canonical_json(changes)})
        return self._record(self._select(conn, kind, new["name"]))

    def layer_occupancy(self, name: str) -> dict[str, Any]:
        """The experiments that hold ranges of layer ``name`` and its free ranges
        (:func:`references.occupancy`); :class:`NotFoundError` when there is no such layer."""
        with self.engine.connect() as conn:
            self._select(conn, "layer", name)
            catalog = self._catalog(conn, "layer", None, write=False)
        return references.occupancy(name, catalog.experiments, self.clock())

    def history(self, kind: str, name: str) -> list[Change]:
        """Every change of the named record, oldest first."""
        _check_kind(kind)
        history = self.tables.history
        with self.engine.connect() as conn:
            current = self._select(conn, kind, name)
            found = conn.execute(select(history).where(history.c.object_id == current.id)
                                 .order_by(history.c.revision))
            return [Change(revision=h.revision, at=as_utc(h.at), actor=h.actor,
                           action=h.action, row=json.loads(h.row), changes=json.loads(h.changes))
                    for h in found]

    def all_history(self, kind: str) -> dict[str, list[dict[str, Any]]]:
        """Name → every stored row of that record, oldest first (for the analytics format)."""
        _check_kind(kind)
        objects, history = self.tables.objects, self.tables.history
        query = (select(objects.c.name, history.c.row)
                 .join(history, history.c.object_id == objects.c.id)
                 .where(objects.c.kind == kind).order_by(objects.c.name, history.c.revision))
        rows: dict[str, list[dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            for name, row_text in conn.execute(query):
                rows.setdefault(name, []).append(json.loads(row_text))
        return rows

    def change_counter(self) -> int:
        """A number that grows with every write: cheap for other processes to poll."""
        state = self.tables.state
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(state.c.change_counter))).scalar()
            return int(value or 0)
