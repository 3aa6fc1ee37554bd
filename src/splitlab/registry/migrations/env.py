"""Alembic environment: runs on the connection (and inside the transaction) that
:func:`splitlab.registry.schema.migrate` opened, so a lock taken there covers the migrations."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection


def run() -> None:
    """Apply the migrations with the prefix and connection given in the config's attributes."""
    config = context.config
    connection: Connection = config.attributes["connection"]
    prefix: str = config.attributes.get("prefix", "")
    context.configure(connection=connection, version_table=f"{prefix}alembic_version",
                      target_metadata=None)
    with context.begin_transaction():
        context.run_migrations(prefix=prefix)


run()
