"""Migration 0002: rows stored before the served defaults get what Test Kitchen reads, with a new
revision and a history entry, and an exposure_version Test Kitchen's PHP agrees with."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from alembic import command
from sqlalchemy import insert, select

from conftest import VECTORS
from splitlab.core.model import canonical_json
from splitlab.registry.schema import _alembic_config, migrate
from splitlab.registry.store import Registry

CREATED = datetime(2026, 5, 1, 8, 30, 15, 123456, tzinfo=UTC)
VECTOR = next(case for case in json.loads((VECTORS / "exposure-version.json").read_text("utf-8"))
              ["cases"] if case["id"] == "unit-mw-user")
"""Test Kitchen's answer for a row equal to the migrated experiment below."""

OLD_EXPERIMENT: dict[str, Any] = {
    "name": "unit-mw-user", "groups": ["control", "treatment"],
    "sample_rate": {"default": 0.1}, "user_identifier_type": "mw-user", "start": None,
    "end": None, "stream_name": None, "schema_id": None, "contextual_attributes": [],
    "phase_index": 0, "version": 1, "exposure_version": "0123456789abcdef"}
OLD_INSTRUMENT: dict[str, Any] = {
    "name": "link-click-instrument", "sample_rate": {"default": 0.01},
    "start": "2026-01-01T00:00:00Z", "end": None, "stream_name": None, "schema_id": None,
    "contextual_attributes": ["page_namespace"], "version": 1}


def store_as_revision_0001(registry: Registry, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Put the database back at revision 0001 holding ``rows`` as that release stored them."""
    objects, history = registry.tables.objects, registry.tables.history
    with registry.engine.begin() as conn:
        command.downgrade(_alembic_config(registry.tables, conn), "0001")
        for kind, row in rows:
            text = canonical_json(row)
            object_id = conn.execute(insert(objects).values(
                kind=kind, name=row["name"], revision=1, row=text, created_at=CREATED,
                updated_at=CREATED, ended_at=None)).inserted_primary_key[0]
            conn.execute(insert(history).values(
                object_id=object_id, revision=1, at=CREATED, actor="alice", action="create",
                row=text, changes="{}"))


def test_old_rows_get_the_served_fields_and_test_kitchens_version(registry: Registry) -> None:
    store_as_revision_0001(registry, [("experiment", OLD_EXPERIMENT),
                                      ("instrument", OLD_INSTRUMENT)])
    counter = registry.change_counter()
    assert migrate(registry.engine, registry.tables) == "0004"
    experiment = registry.get("experiment", "unit-mw-user")
    assert experiment.revision == 2
    assert experiment.row == {
        **OLD_EXPERIMENT, "start": "2026-05-01T08:30:15Z", "end": "9999-12-31T23:59:59Z",
        "stream_name": "product_metrics.web_base",
        "schema_id": "/analytics/product_metrics/web/base/2.1.0",
        "exposure_version": VECTOR["expected"], "version": 2}
    instrument = registry.get("instrument", "link-click-instrument")
    assert instrument.row == {
        **OLD_INSTRUMENT, "end": "9999-12-31T23:59:59Z", "sample_unit": "session",
        "stream_name": "product_metrics.web_base",
        "schema_id": "/analytics/product_metrics/web/base/2.1.0", "version": 2}
    [_, change] = registry.history("experiment", "unit-mw-user")
    assert (change.actor, change.action, change.revision) == ("splitlab-migration", "update", 2)
    assert change.changes["exposure_version"] == ["0123456789abcdef", VECTOR["expected"]]
    assert registry.change_counter() == counter + 1


def test_the_migration_leaves_complete_rows_and_runs_once(registry: Registry) -> None:
    complete = {**OLD_EXPERIMENT, "start": "2026-05-01T00:00:00Z", "end": "2026-06-01T00:00:00Z",
                "stream_name": "product_metrics.web_base",
                "schema_id": "/analytics/product_metrics/web/base/2.1.0",
                "exposure_version": VECTOR["expected"]}
    store_as_revision_0001(registry, [("experiment", complete)])
    counter = registry.change_counter()
    migrate(registry.engine, registry.tables)
    migrate(registry.engine, registry.tables)
    assert registry.get("experiment", "unit-mw-user").revision == 1
    assert registry.change_counter() == counter
    with registry.engine.connect() as conn:
        rows = conn.execute(select(registry.tables.history.c.revision)).scalars().all()
    assert rows == [1]
