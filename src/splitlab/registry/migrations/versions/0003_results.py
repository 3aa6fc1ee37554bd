"""The continuous results: stored runs, the metrics catalog, experiments' metrics, leases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade(prefix: str = "") -> None:
    """Every table name is ``prefix + name`` (``splitlab.results.store`` describes them)."""
    op.create_table(
        f"{prefix}results_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("experiment", sa.String(255), nullable=False),
        sa.Column("computed_at", WHEN, nullable=False),
        sa.Column("events_through", sa.String(40), nullable=True),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("health", sa.Text, nullable=False),
    )
    op.create_index(f"{prefix}results_runs_experiment", f"{prefix}results_runs",
                    ["experiment", "id"])
    op.create_table(
        f"{prefix}metrics",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_table(
        f"{prefix}experiment_metrics",
        sa.Column("experiment", sa.String(255), primary_key=True),
        sa.Column("metric", sa.String(255), sa.ForeignKey(f"{prefix}metrics.name"),
                  primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        f"{prefix}leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )


def downgrade(prefix: str = "") -> None:
    """Drop the tables (their data with them)."""
    for name in ("leases", "experiment_metrics", "metrics", "results_runs"):
        op.drop_table(f"{prefix}{name}")
