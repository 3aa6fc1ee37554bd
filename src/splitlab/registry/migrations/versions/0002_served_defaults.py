"""Stored rows get what Test Kitchen's MediaWiki extension reads: RFC 3339 ``start`` and ``end``,
``stream_name``, ``schema_id``, an instrument's ``sample_unit``, and an experiment's
``exposure_version`` as Test Kitchen computes it (issue 16).

Each changed row gets a new revision and a history entry by ``splitlab-migration``, as any other
change would, so the analytics format's phases and the ETags follow. Rows already complete are
left as they are. The fill rules are the registry's own (:func:`rules.migrate_stored`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from splitlab.core.model import canonical_json
from splitlab.registry import rules

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ACTOR = "splitlab-migration"
WHEN = sa.DateTime(timezone=True)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def upgrade(prefix: str = "") -> None:
    """Fill the served fields of every stored row that lacks one."""
    objects = sa.table(f"{prefix}objects", sa.column("id"), sa.column("kind"),
                       sa.column("revision"), sa.column("row"), sa.column("created_at", WHEN),
                       sa.column("updated_at", WHEN))
    history = sa.table(f"{prefix}history", sa.column("object_id"), sa.column("revision"),
                       sa.column("at", WHEN), sa.column("actor"), sa.column("action"),
                       sa.column("row"), sa.column("changes"))
    state = sa.table(f"{prefix}state", sa.column("id"), sa.column("change_counter"))
    conn = op.get_bind()
    now = datetime.now(UTC)
    changed = 0
    for found in conn.execute(sa.select(objects)).all():
        old = json.loads(found.row)
        new = rules.migrate_stored(found.kind, old, _aware(found.created_at))
        if new == old:
            continue
        new["version"] = found.revision + 1
        text = canonical_json(new)
        changes = {k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new))
                   if k != "version" and old.get(k) != new.get(k)}
        conn.execute(sa.update(objects).where(objects.c.id == found.id).values(
            revision=found.revision + 1, row=text, updated_at=now))
        conn.execute(sa.insert(history).values(
            object_id=found.id, revision=found.revision + 1, at=now, actor=ACTOR,
            action="update", row=text, changes=canonical_json(changes)))
        changed += 1
    if changed:
        conn.execute(sa.update(state).where(state.c.id == 1)
                     .values(change_counter=state.c.change_counter + 1))


def downgrade(prefix: str = "") -> None:
    """Nothing to undo: the filled values are valid rows of revision 0001 too."""
