"""The registry store, on SQLite and PostgreSQL: history, rules, optimistic concurrency."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from splitlab.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    PreconditionRequiredError,
)
from splitlab.registry.schema import RESULTS_TABLES, migrate
from splitlab.registry.store import Registry

from .conftest import FakeClock

ROW: dict[str, Any] = {
    "name": "sticky-header-2026",
    "groups": ["control", "treatment"],
    "sample_rate": {"default": 0.1, "0.5": ["enwiki", "dewiki"]},
    "user_identifier_type": "edge-unique",
    "start": "2026-11-23T00:00:00Z",
    "end": "2027-02-01T00:00:00Z",
    "stream_name": "product_metrics.web_base",
    "schema_id": "/analytics/product_metrics/web/base/2.1.0",
    "contextual_attributes": ["page_namespace"],
}


def snapshot(registry: Registry) -> tuple[Any, ...]:
    """Everything stored, to assert that a refused write changed nothing."""
    records = [(r.name, r.revision, r.row) for r in registry.records("experiment")]
    return records, registry.all_history("experiment"), registry.change_counter()


def test_create_stores_normalized_row_and_history(registry: Registry) -> None:
    record = registry.create("experiment", ROW, actor="alice")
    assert record.revision == 1
    assert record.row["version"] == 1
    assert record.row["sample_rate"] == {"default": 0.1, "0.5": ["dewiki", "enwiki"]}
    assert len(record.row["exposure_version"]) == 16
    assert record.etag.startswith('"') and record.etag.endswith('"')
    assert registry.get("experiment", ROW["name"]) == record
    [entry] = registry.history("experiment", ROW["name"])
    assert (entry.action, entry.actor, entry.revision) == ("create", "alice", 1)
    assert entry.changes["groups"] == [None, ["control", "treatment"]]


def test_names_are_unique_and_never_reused(registry: Registry) -> None:
    registry.create("experiment", ROW, actor="alice")
    with pytest.raises(ConflictError, match="already exists"):
        registry.create("experiment", ROW, actor="bob")
    # an instrument may share the name: the kinds are separate
    registry.create("instrument", {"name": ROW["name"], "sample_rate": {"default": 1}}, "alice")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "short"}, "name"),
        ({"name": "has space in it"}, "name"),
        ({"groups": ["control", "bad group"]}, "groups"),
        ({"groups": []}, "groups"),
        ({"colour": "blue"}, "colour"),
        ({"sample_rate": {"default": 2}}, "sample_rate.default"),
        ({"user_identifier_type": "ip-address"}, "user_identifier_type"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_invalid_rows_are_refused_naming_the_field(
    registry: Registry, change: dict[str, Any], field: str
) -> None:
    before = snapshot(registry)
    with pytest.raises(ConfigError) as caught:
        registry.create("experiment", {**ROW, **change}, actor="alice")
    assert caught.value.field == field
    assert snapshot(registry) == before


def test_update_needs_current_etag(registry: Registry, clock: FakeClock) -> None:
    first = registry.create("experiment", ROW, actor="alice")
    with pytest.raises(PreconditionRequiredError):
        registry.update("experiment", ROW["name"], {"sample_rate": {"default": 0.2}}, None, "bob")
    second = registry.update("experiment", ROW["name"], {"sample_rate": {"default": 0.2}},
                             first.etag, "bob")
    assert second.revision == 2 and second.row["version"] == 2
    assert second.etag != first.etag
    before = snapshot(registry)
    with pytest.raises(PreconditionFailedError, match="changed since you read it"):
        registry.update("experiment", ROW["name"], {"sample_rate": {"default": 0.3}},
                        first.etag, "carol")
    assert snapshot(registry) == before
    entries = registry.history("experiment", ROW["name"])
    assert [e.action for e in entries] == ["create", "update"]
    assert entries[1].changes == {"sample_rate": [{"default": 0.1, "0.5": ["dewiki", "enwiki"]},
                                                  {"default": 0.2}]}
    assert entries[1].actor == "bob"


def test_groups_may_change_before_start_but_not_after(
    registry: Registry, clock: FakeClock
) -> None:
    record = registry.create("experiment", ROW, actor="alice")
    record = registry.update("experiment", ROW["name"], {"groups": ["control", "b", "c"]},
                             record.etag, "alice")
    clock.advance(days=2)  # now past the start
    before = snapshot(registry)
    for change in ({"groups": ["control", "b"]}, {"user_identifier_type": "mw-user"},
                   {"start": "2027-01-01T00:00:00Z"}, {"start": None}):
        with pytest.raises(ConflictError, match="phase_index 1"):
            registry.update("experiment", ROW["name"], change, record.etag, "bob")
    with pytest.raises(ConflictError, match="only move to the next phase"):
        registry.update("experiment", ROW["name"], {"phase_index": 2}, record.etag, "bob")
    with pytest.raises(ConflictError, match="name cannot change"):
        registry.update("experiment", ROW["name"], {"name": "sticky-header-2027"},
                        record.etag, "bob")
    assert snapshot(registry) == before
    # the sanctioned path: a new phase
    phase = registry.update("experiment", ROW["name"],
                            {"groups": ["control", "b"], "phase_index": 1,
                             "start": "2026-11-25T00:00:00Z"}, record.etag, "bob")
    assert phase.row["phase_index"] == 1 and phase.row["groups"] == ["control", "b"]


def test_rename_allowed_only_before_start(registry: Registry) -> None:
    record = registry.create("experiment", ROW, actor="alice")
    renamed = registry.update("experiment", ROW["name"], {"name": "sticky-header-v2"},
                              record.etag, "alice")
    assert renamed.name == "sticky-header-v2"
    with pytest.raises(NotFoundError):
        registry.get("experiment", ROW["name"])
    assert [e.action for e in registry.history("experiment", "sticky-header-v2")] == [
        "create", "update"]


def test_end_keeps_history_and_refuses_twice(registry: Registry, clock: FakeClock) -> None:
    registry.create("experiment", ROW, actor="alice")
    with pytest.raises(ConflictError, match="has not started"):
        registry.end("experiment", ROW["name"], None, "bob")
    clock.advance(days=3)
    ended = registry.end("experiment", ROW["name"], None, "bob")
    assert ended.row["end"] == "2026-11-25T12:00:00Z"
    assert ended.ended_at is not None
    with pytest.raises(ConflictError, match="already ended"):
        registry.end("experiment", ROW["name"], None, "bob")
    assert [e.action for e in registry.history("experiment", ROW["name"])] == ["create", "end"]
    assert [r.name for r in registry.records("experiment")] == [ROW["name"]]


def test_empty_or_noop_patch_is_refused(registry: Registry) -> None:
    record = registry.create("experiment", ROW, actor="alice")
    with pytest.raises(ConfigError, match="empty"):
        registry.update("experiment", ROW["name"], {}, record.etag, "bob")
    with pytest.raises(ConfigError, match="current value"):
        registry.update("experiment", ROW["name"], {"groups": ROW["groups"]}, record.etag, "bob")


def test_managed_fields_are_ignored(registry: Registry) -> None:
    row = copy.deepcopy(ROW)
    row.update(version=99, exposure_version="0000000000000000")
    record = registry.create("experiment", row, actor="alice")
    assert record.row["version"] == 1
    assert record.row["exposure_version"] != "0000000000000000"


def test_instruments(registry: Registry, clock: FakeClock) -> None:
    row = {"name": "link-click-instrument", "sample_rate": {"default": 0.5},
           "stream_name": "product_metrics.web_base", "start": "2026-11-01T00:00:00Z"}
    record = registry.create("instrument", row, actor="alice")
    assert record.row["contextual_attributes"] == []
    with pytest.raises(ConfigError) as caught:
        registry.update("instrument", row["name"], {"groups": ["a"]}, record.etag, "bob")
    assert caught.value.field == "groups"
    ended = registry.end("instrument", row["name"], record.etag, "bob")
    assert ended.row["end"] == "2026-11-22T12:00:00Z"


def test_change_counter_and_migrations_are_idempotent(registry: Registry) -> None:
    start = registry.change_counter()
    registry.create("experiment", ROW, actor="alice")
    assert registry.change_counter() == start + 1
    assert migrate(registry.engine, registry.tables) == "0004"  # the latest migration
    assert registry.get("experiment", ROW["name"]).revision == 1


def test_unknown_names_are_not_found(registry: Registry) -> None:
    with pytest.raises(NotFoundError):
        registry.get("experiment", "does-not-exist")
    with pytest.raises(NotFoundError):
        registry.update("experiment", "does-not-exist", {"groups": ["a"]}, '"x"', "bob")


def test_concurrent_updates_with_one_etag_one_wins(registry: Registry) -> None:
    """Optimistic concurrency under real concurrency: of N writers holding the same ETag,
    exactly one succeeds and the others get 412; the history has exactly one update."""
    from concurrent.futures import ThreadPoolExecutor

    record = registry.create("experiment", ROW, actor="alice")

    def attempt(i: int) -> str:
        try:
            registry.update("experiment", ROW["name"], {"sample_rate": {"default": i / 100}},
                            record.etag, f"writer-{i}")
        except PreconditionFailedError:
            return "412"
        return "ok"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(1, 7)))
    assert outcomes.count("ok") == 1 and outcomes.count("412") == 5
    assert [e.action for e in registry.history("experiment", ROW["name"])] == ["create", "update"]


def test_migrated_schema_matches_the_table_descriptions(registry: Registry) -> None:
    """The queries' table descriptions and the Alembic migrations agree column for column."""
    from sqlalchemy import inspect

    inspector = inspect(registry.engine)
    for table in (registry.tables.state, registry.tables.objects, registry.tables.history):
        migrated = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
        described = {c.name: c.nullable for c in table.columns}
        assert migrated == described, table.name
    unique = inspector.get_unique_constraints(registry.tables.objects.name)
    assert [sorted(u["column_names"]) for u in unique] == [["kind", "name"]]


def test_a_database_from_before_alembic_is_adopted(registry: Registry) -> None:
    """The first registry release recorded its schema as version 1 in ``schema_migrations``;
    such a database is stamped at revision 0001 and keeps its data."""
    from sqlalchemy import text

    registry.create("experiment", ROW, actor="alice")
    prefix = registry.tables.prefix
    with registry.engine.begin() as conn:
        conn.execute(text(f'DROP TABLE "{prefix}alembic_version"'))
        for name in RESULTS_TABLES:  # revision 0002's, which that release did not have
            conn.execute(text(f'DROP TABLE "{prefix}{name}"'))
        conn.execute(text(f'CREATE TABLE "{prefix}schema_migrations" (version INTEGER)'))
        conn.execute(text(f'INSERT INTO "{prefix}schema_migrations" VALUES (1)'))
    assert migrate(registry.engine, registry.tables) == "0004"  # stamped 0001, then upgraded
    assert registry.get("experiment", ROW["name"]).revision == 1
    registry.create("experiment", {**ROW, "name": "after-adoption"}, actor="alice")
