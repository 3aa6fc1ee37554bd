"""Layers and holdouts become registry records (issue 14): every layer and holdout that stored
experiment rows name gets a ``layer`` or ``holdout`` record, so experiments saved before keep
passing the registry's reference checks.

A holdout takes the percent of the most recently updated experiment that lists it (rows that
disagree keep theirs: an experiment's entries left as they are are not re-checked). Each record
gets a history entry by ``splitlab-migration``; names already taken are left alone, so running it
again adds nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from splitlab.core.model import canonical_json
from splitlab.registry import rules

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ACTOR = "splitlab-migration"
WHEN = sa.DateTime(timezone=True)
DESCRIPTION = "created by migration 0004 from the experiments that name it"


def _named(row: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(kind, entity row) for the layer and holdouts an experiment row names."""
    found: list[tuple[str, dict[str, Any]]] = []
    layer = row.get("layer")
    if isinstance(layer, Mapping) and isinstance(layer.get("name"), str):
        found.append(("layer", {"name": layer["name"], "description": DESCRIPTION}))
    for entry in row.get("holdouts") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            found.append(("holdout", {"name": entry["name"], "percent": entry.get("percent"),
                                      "description": DESCRIPTION}))
    return found


def upgrade(prefix: str = "") -> None:
    """Create the layer and holdout records the stored experiments need."""
    objects = sa.table(f"{prefix}objects", sa.column("id"), sa.column("kind"), sa.column("name"),
                       sa.column("revision"), sa.column("row"), sa.column("created_at", WHEN),
                       sa.column("updated_at", WHEN), sa.column("ended_at", WHEN))
    history = sa.table(f"{prefix}history", sa.column("object_id"), sa.column("revision"),
                       sa.column("at", WHEN), sa.column("actor"), sa.column("action"),
                       sa.column("row"), sa.column("changes"))
    state = sa.table(f"{prefix}state", sa.column("id"), sa.column("change_counter"))
    conn = op.get_bind()
    taken = {(kind, name) for kind, name in conn.execute(sa.select(objects.c.kind, objects.c.name))}
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    experiments = conn.execute(sa.select(objects.c.row).where(objects.c.kind == "experiment")
                               .order_by(objects.c.updated_at, objects.c.id))
    for (text,) in experiments:
        for kind, entity in _named(json.loads(text)):
            wanted[(kind, entity["name"])] = entity  # the latest updated experiment wins
    now = datetime.now(UTC)
    created = 0
    for (kind, name), entity in sorted(wanted.items()):
        if (kind, name) in taken:
            continue
        row = {**entity, "version": 1}
        stored = canonical_json(row)
        conn.execute(sa.insert(objects).values(
            kind=kind, name=name, revision=1, row=stored, created_at=now, updated_at=now,
            ended_at=None))
        object_id = conn.execute(sa.select(objects.c.id).where(
            objects.c.kind == kind, objects.c.name == name)).scalar_one()
        conn.execute(sa.insert(history).values(
            object_id=object_id, revision=1, at=now, actor=ACTOR, action="create", row=stored,
            changes=canonical_json(rules.diff({}, row))))
        created += 1
    if created:
        conn.execute(sa.update(state).where(state.c.id == 1)
                     .values(change_counter=state.c.change_counter + 1))


def downgrade(prefix: str = "") -> None:
    """Remove the layer and holdout records (revision 0003 knew no such kinds)."""
    conn = op.get_bind()
    objects = sa.table(f"{prefix}objects", sa.column("id"), sa.column("kind"))
    history = sa.table(f"{prefix}history", sa.column("object_id"))
    ids = sa.select(objects.c.id).where(objects.c.kind.in_(("layer", "holdout")))
    conn.execute(sa.delete(history).where(history.c.object_id.in_(ids)))
    conn.execute(sa.delete(objects).where(objects.c.kind.in_(("layer", "holdout"))))
