"""The dashboard's caches on both backends: what they return is what the store holds right now,
including writes made through another connection (another worker process or host), and
nothing is re-read or re-parsed while nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from splitlab.core.model import Experiment
from splitlab.registry.store import Registry
from splitlab.results.store import ResultsStore
from splitlab.service.ui.cache import LatestRuns, RegistryView
from tests.unit.registry.conftest import FakeClock, clock, registry

__all__ = ["FakeClock", "clock", "registry"]

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def row(name: str) -> dict[str, object]:
    return {"name": name, "groups": ["control", "treatment"], "sample_rate": {"default": 0.5},
            "user_identifier_type": "mw-user"}


@pytest.fixture
def other(registry: Registry, tmp_path: Path) -> Iterator[Registry]:
    """A second store on the same database, as another worker process would open it."""
    url = registry.engine.url.render_as_string(hide_password=False)
    store = Registry.open(url, tmp_path, prefix=registry.tables.prefix, clock=registry.clock)
    try:
        yield store
    finally:
        store.close()


def test_records_and_experiments_follow_writes_from_another_process(
        registry: Registry, other: Registry, clock: FakeClock) -> None:
    view = RegistryView(lambda: registry)
    assert view.records() == () and view.experiments() == ()
    other.create("experiment", row("experiment-b"), "someone")
    other.create("experiment", row("experiment-a"), "someone")
    first = view.records()
    assert [r.row for r in first] == [r.row for r in registry.records("experiment")]
    assert [r.name for r in first] == ["experiment-a", "experiment-b"]
    assert view.records() is first, "nothing changed: the records are not read again"
    built = view.experiments()
    assert built == tuple(Experiment.from_config(r.row) for r in first)
    assert view.experiments() is built
    clock.advance(minutes=5)
    assert all(e.is_active(clock.now) for e in built)
    etag = other.get("experiment", "experiment-a").etag
    ended = other.end("experiment", "experiment-a", etag, "someone")
    assert view.records()[0] == ended
    clock.advance(seconds=1)
    assert [e.is_active(clock.now) for e in view.experiments()] == [False, True]


def test_a_new_store_is_never_answered_from_the_old_one(registry: Registry,
                                                        tmp_path: Path) -> None:
    registry.create("experiment", row("experiment-a"), "someone")
    current = [registry]
    view = RegistryView(lambda: current[0])
    assert [r.name for r in view.records()] == ["experiment-a"]
    fresh = Registry.open(None, tmp_path / "fresh")
    try:
        fresh.create("experiment", row("experiment-z"), "someone")
        assert fresh.change_counter() == registry.change_counter()
        current[0] = fresh
        assert [r.name for r in view.records()] == ["experiment-z"]
    finally:
        fresh.close()


def test_latest_runs_are_the_newest_stored_and_parsed_once(registry: Registry) -> None:
    store = ResultsStore(registry.engine, registry.tables.prefix)
    latest = LatestRuns()
    names = ["exp-a", "exp-b", "exp-c"]
    assert latest.of(store, names) == {}
    for minute in range(3):
        store.save_run("exp-a", NOW + timedelta(minutes=minute), f"a{minute}", "duckdb",
                       {"groups": {"control": minute}}, [{"check": "srm", "ok": True}])
    store.save_run("exp-b", NOW, "b0", "duckdb", {"groups": {"control": 7}}, [])
    first = latest.of(store, names)
    assert first == {n: store.history(n, 1, 0)[0] for n in ("exp-a", "exp-b")}
    assert first["exp-a"].events_through == "a2"
    store.save_run("exp-b", NOW + timedelta(minutes=1), "b1", "spark", {"groups": {}}, [])
    second = latest.of(store, names)
    assert second["exp-a"] is first["exp-a"], "an unchanged run is not read again"
    assert second["exp-b"] == store.history("exp-b", 1, 0)[0]
    assert second["exp-b"].events_through == "b1"
    assert latest.of(store, ["exp-b"]) == {"exp-b": second["exp-b"]}
