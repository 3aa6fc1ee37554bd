"""The results store on SQLite and PostgreSQL: runs and their history, the metrics catalog, the
metrics an experiment names, and the lease that lets one scheduler compute at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from splitlab.errors import ConfigError, ConflictError, NotFoundError
from splitlab.registry.store import Registry
from splitlab.results.store import ResultsStore

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def store_of(registry: Registry) -> ResultsStore:
    return ResultsStore(registry.engine, registry.tables.prefix)


def test_runs_are_kept_newest_first(registry: Registry) -> None:
    store = store_of(registry)
    assert store.latest("exp-a") is None
    for minute in range(3):
        store.save_run("exp-a", NOW + timedelta(minutes=minute), f"t{minute}", "duckdb",
                       {"groups": {"control": minute}}, [{"check": "srm", "ok": True}])
    store.save_run("exp-b", NOW, None, "spark", {"groups": {}}, [])
    latest = store.latest("exp-a")
    assert latest is not None and latest.report == {"groups": {"control": 2}}
    assert latest.computed_at == NOW + timedelta(minutes=2)
    assert [r.events_through for r in store.history("exp-a", 2, 1)] == ["t1", "t0"]
    assert store.count("exp-a") == 3
    assert {n: r.engine for n, r in store.latest_of(["exp-a", "exp-b", "exp-c"]).items()} == {
        "exp-a": "duckdb", "exp-b": "spark"}
    ids = store.latest_ids(["exp-a", "exp-b", "exp-c"])
    assert ids == {"exp-a": latest.id, "exp-b": store.history("exp-b", 1, 0)[0].id}
    assert sorted(r.events_through or "-" for r in store.runs_by_id([*ids.values(), 999])) == [
        "-", "t2"]
    assert store.latest_ids([]) == {} and store.runs_by_id([]) == []


def test_the_catalog_validates_and_protects_metrics_in_use(registry: Registry) -> None:
    store = store_of(registry)
    store.put_metric("clicks", {"kind": "count", "filter": {"action": "click"}}, NOW)
    store.put_metric("clicks", {"kind": "count", "filter": {"action": ["click", "tap"]}}, NOW)
    with pytest.raises(ConfigError, match="kind must be one of"):
        store.put_metric("bad", {"kind": "median"}, NOW)
    with pytest.raises(ConfigError, match="invalid metric name"):
        store.put_metric("no spaces", {"kind": "count"}, NOW)
    assert [m.name for m in store.metric_definitions()] == ["clicks"]
    with pytest.raises(ConfigError, match="no metric named 'nope'"):
        store.set_experiment_metrics("exp-a", ["clicks", "nope"])
    assert store.set_experiment_metrics("exp-a", ["clicks"]) == ["clicks"]
    assert [m.name for m in store.catalog_for("exp-a")] == ["clicks"]
    assert store.catalog_for("exp-a")[0].outcome is not None
    with pytest.raises(ConflictError, match="used by exp-a"):
        store.delete_metric("clicks")
    store.set_experiment_metrics("exp-a", [])
    store.delete_metric("clicks")
    with pytest.raises(NotFoundError):
        store.delete_metric("clicks")


def test_one_holder_at_a_time_until_the_lease_expires(registry: Registry) -> None:
    store = store_of(registry)
    assert store.acquire("results", "a", 60, 1_000)
    assert not store.acquire("results", "b", 60, 2_000)
    assert store.acquire("results", "a", 60, 30_000)  # renewed to 90 s
    assert not store.acquire("results", "b", 60, 89_000)
    assert store.acquire("results", "b", 60, 91_000)  # expired: taken over
    assert not store.acquire("results", "a", 60, 92_000)
    store.release("results", "b")
    assert store.acquire("results", "a", 60, 93_000)
