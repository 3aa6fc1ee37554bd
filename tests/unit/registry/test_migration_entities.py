"""Migration 0004: the layers and holdouts that experiments stored before issue 14 name become
registry records, so those experiments keep working (their edits pass the reference checks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import command
from sqlalchemy import insert

from splitlab.core.model import canonical_json
from splitlab.registry.schema import _alembic_config, migrate
from splitlab.registry.store import Registry

STORED = datetime(2026, 6, 1, tzinfo=UTC)


def experiment(name: str, updated: int, **fields: Any) -> dict[str, Any]:
    return {"name": name, "groups": ["control", "treatment"], "algorithm": "sl-v2",
            "traffic_split": {"default": {"control": 5, "treatment": 5}},
            "sample_rate": {"default": 0.1}, "user_identifier_type": "mw-user",
            "start": "2026-11-01T00:00:00Z", "end": "2027-02-01T00:00:00Z",
            "stream_name": "product_metrics.web_base",
            "schema_id": "/analytics/product_metrics/web/base/2.1.0",
            "contextual_attributes": [], "phase_index": 0, "version": 1,
            "exposure_version": "0123456789abcdef", "_updated": updated, **fields}


def store_as_revision_0003(registry: Registry, rows: list[dict[str, Any]]) -> None:
    """Put the database back at revision 0003 holding the experiment ``rows``."""
    objects, history = registry.tables.objects, registry.tables.history
    with registry.engine.begin() as conn:
        command.downgrade(_alembic_config(registry.tables, conn), "0003")
        for row in rows:
            updated = datetime(2026, 6, row.pop("_updated"), tzinfo=UTC)
            text = canonical_json(row)
            object_id = conn.execute(insert(objects).values(
                kind="experiment", name=row["name"], revision=1, row=text, created_at=STORED,
                updated_at=updated, ended_at=None)).inserted_primary_key[0]
            conn.execute(insert(history).values(
                object_id=object_id, revision=1, at=STORED, actor="alice", action="create",
                row=text, changes="{}"))


def test_named_layers_and_holdouts_become_records(registry: Registry) -> None:
    registry.create("layer", {"name": "not-named"}, "alice")  # 0003 knew no layers: it goes
    store_as_revision_0003(registry, [
        experiment("layered-old-exp", 3, layer={"name": "reading", "range": [0, 50_000]},
                   holdouts=[{"name": "global-2026", "percent": 2}]),
        experiment("held-old-exp", 5, holdouts=[{"name": "global-2026", "percent": 3},
                                                {"name": "editors", "percent": 10}]),
        experiment("plain-old-exp", 4),
    ])
    counter = registry.change_counter()
    assert migrate(registry.engine, registry.tables) == "0004"
    assert [r.name for r in registry.records("layer")] == ["reading"]
    assert {r.name: r.row["percent"] for r in registry.records("holdout")} == {
        "editors": 10, "global-2026": 3}  # the latest updated experiment's percent
    [created] = registry.history("holdout", "editors")
    assert (created.actor, created.action, created.revision) == (
        "splitlab-migration", "create", 1)
    assert created.changes["percent"] == [None, 10]
    assert registry.change_counter() == counter + 1
    # the old experiments can be edited again; the one that disagrees keeps its percent
    for name in ("layered-old-exp", "held-old-exp"):
        record = registry.get("experiment", name)
        registry.update("experiment", name, {"contextual_attributes": ["page_namespace"]},
                        record.etag, "bob")
    assert registry.get("experiment", "layered-old-exp").row["holdouts"] == [
        {"name": "global-2026", "percent": 2}]
    migrate(registry.engine, registry.tables)  # once only
    assert registry.change_counter() == counter + 3
