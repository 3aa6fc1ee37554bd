"""Service settings, read from the environment (``splitlab serve`` sets them from its flags).

| variable | meaning | default |
| --- | --- | --- |
| ``SPLITLAB_DATA_DIR`` | where the embedded SQLite files, keys and spool live | ``./data`` |
| ``SPLITLAB_DATABASE_URL`` | ``postgresql://...`` to use PostgreSQL instead of SQLite | unset |
| ``SPLITLAB_NATS_URL`` | NATS JetStream for events at scale | unset |
| ``SPLITLAB_ADMIN_TOKEN`` | bearer token for writes; generated on first start when unset | unset |
| ``SPLITLAB_DEMO`` | ``1`` seeds a few realistic experiments on first start | unset |
| ``SPLITLAB_TABLE_PREFIX`` | registry table name prefix (isolates test runs) | empty |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service needs to know to start."""

    data_dir: Path
    database_url: str | None = None
    nats_url: str | None = None
    admin_token: str | None = None
    demo: bool = False
    table_prefix: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (default: the process environment)."""
        source = os.environ if env is None else env
        return cls(
            data_dir=Path(source.get("SPLITLAB_DATA_DIR", "data")).resolve(),
            database_url=source.get("SPLITLAB_DATABASE_URL") or None,
            nats_url=source.get("SPLITLAB_NATS_URL") or None,
            admin_token=source.get("SPLITLAB_ADMIN_TOKEN") or None,
            demo=source.get("SPLITLAB_DEMO") == "1",
            table_prefix=source.get("SPLITLAB_TABLE_PREFIX", ""),
        )
