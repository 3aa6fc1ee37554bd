"""Spark and DuckDB store the same results from the same lake: one scheduler run with each engine
(the second finds no new events), every stored number equal to 1e-9."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from splitlab.intake.sinks import StoredEvent
from splitlab.intake.sqlite_log import SQLiteEventLog
from splitlab.registry.store import Registry
from splitlab.results.runner import RunnerConfig, build_scheduler
from splitlab.results.store import ResultsStore
from tests.integration.results_scenario import EXPERIMENT, ROW, traffic

pytestmark = pytest.mark.slow
pytest.importorskip("pyspark")


def close(left: Any, right: Any, where: str = "") -> None:
    """``left`` equals ``right``, floats to a relative 1e-9."""
    if isinstance(left, float) and isinstance(right, float):
        assert math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12), where
    elif isinstance(left, dict):
        assert left.keys() == right.keys(), where
        for key in left:
            close(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list):
        assert len(left) == len(right), where
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            close(a, b, f"{where}[{i}]")
    else:
        assert left == right, where


def test_spark_and_duckdb_store_the_same_results(tmp_path: Path) -> None:
    plan = traffic(seed=3, units=3000)
    received = "2026-11-22T10:00:01.000Z"
    log = SQLiteEventLog(tmp_path / "events.sqlite")
    log.append([StoredEvent(e["meta"]["id"], e["meta"]["stream"], received,
                            orjson.dumps({**e, "meta": {**e["meta"], "dt": received}}))
                for e in plan.events])
    log.close()
    registry = Registry.open(None, tmp_path)
    registry.create("experiment", ROW, "test")
    store = ResultsStore(registry.engine)
    now = datetime.now(UTC)
    store.put_metric("exposed", {"kind": "proportion", "filter": {"action": "experiment_exposure"}},
                     now)
    store.put_metric("enrollments", {"kind": "count",
                                     "filter": {"action": "experiment_enrollment"}}, now)
    store.set_experiment_metrics(EXPERIMENT, ["exposed", "enrollments"])
    reports = {}
    for engine in ("duckdb", "spark"):
        scheduler = build_scheduler(registry, RunnerConfig(tmp_path, engine=engine))
        try:
            summary = scheduler.run_once()
        finally:
            scheduler.close()
        assert summary is not None and summary.stored == [EXPERIMENT], summary
        run = store.latest(EXPERIMENT)
        assert run is not None and run.engine == engine
        checks = [(c["check"], c["ok"]) for c in run.health]
        reports[engine] = {k: v for k, v in run.report.items() if k != "engine"}, checks
    registry.close()
    assert reports["duckdb"][0]["groups"] == plan.expected
    close(reports["duckdb"][0], reports["spark"][0])
    assert reports["duckdb"][1] == reports["spark"][1]
