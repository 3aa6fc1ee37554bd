"""The registry on both backends: a temporary SQLite file, and PostgreSQL under a unique table
prefix (other helpers' tests share the database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from splitlab.registry.schema import drop_all
from splitlab.registry.store import Registry


class FakeClock:
    """A settable clock: registry rules depend on "now"."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[Registry]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    prefix = f"t{uuid.uuid4().hex[:10]}_" if url else ""
    store = Registry.open(url, tmp_path, prefix=prefix, clock=clock)
    try:
        yield store
    finally:
        if url:
            drop_all(store.engine, store.tables)
        store.close()
