"""The initial registry schema: objects, their history, and the change counter.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade(prefix: str = "") -> None:
    """Every table name is ``prefix + name``."""
    state = op.create_table(
        f"{prefix}state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("change_counter", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "change_counter": 0}])
    op.create_table(
        f"{prefix}objects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("row", sa.Text, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("ended_at", WHEN, nullable=True),
        sa.UniqueConstraint("kind", "name", name=f"{prefix}objects_kind_name"),
    )
    op.create_table(
        f"{prefix}history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("object_id", sa.Integer, sa.ForeignKey(f"{prefix}objects.id"), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("row", sa.Text, nullable=False),
        sa.Column("changes", sa.Text, nullable=False),
        sa.UniqueConstraint("object_id", "revision", name=f"{prefix}history_object_revision"),
    )
    op.create_index(f"{prefix}history_object_id", f"{prefix}history", ["object_id"])


def downgrade(prefix: str = "") -> None:
    """Drop the tables (their data with them)."""
    op.drop_table(f"{prefix}history")
    op.drop_table(f"{prefix}objects")
    op.drop_table(f"{prefix}state")
