"""The scheduler's SRM health check expects the split the experiment's row configures on each
unit's site (the same function as ``splitlab analyze --config``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from scipy import stats as scipy_stats

from splitlab.analysis.engines import DuckDBEngine
from splitlab.intake.sinks import StoredEvent
from splitlab.registry.store import Registry
from splitlab.results.lake import Batch, Lake
from splitlab.results.scheduler import Scheduler
from splitlab.results.store import ResultsStore

EXPERIMENT = "scheduler-weighted-sites"


class Events:
    """An in-memory event source: one batch, then nothing."""

    name = "memory"

    def __init__(self, events: list[StoredEvent]) -> None:
        self.events = events

    def batches(self, position: str | None) -> Iterator[Batch]:
        if position is None:
            yield Batch(self.events, "done")

    def committed(self, batch: Batch) -> None:
        pass


def enrollments(site: str, group: str, count: int) -> list[StoredEvent]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    events = []
    for i in range(count):
        event_id = str(uuid.uuid4())
        body: dict[str, Any] = {
            "$schema": "/analytics/product_metrics/web/base/2.1.0", "dt": now,
            "meta": {"id": event_id, "dt": now, "stream": "product_metrics.web_base"},
            "action": "experiment_enrollment", "mediawiki": {"database": site},
            "experiment": {"enrolled": EXPERIMENT, "assigned": group,
                           "subject_id": f"{site}-{group}-{i}", "sampling_unit": "mw-user"}}
        events.append(StoredEvent(event_id, "product_metrics.web_base", now,
                                  orjson.dumps(body)))
    return events


@pytest.mark.parametrize(("dewiki", "healthy"), [((150, 450), True), ((300, 300), False)])
def test_the_health_check_uses_each_sites_configured_split(
    tmp_path: Path, dewiki: tuple[int, int], healthy: bool
) -> None:
    registry = Registry.open(None, tmp_path)
    start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    registry.create("experiment", {
        "name": EXPERIMENT, "groups": ["control", "treatment"], "algorithm": "sl-v2",
        "user_identifier_type": "mw-user", "start": start,
        "traffic_split": {"default": {"control": 20, "treatment": 20},
                          "dewiki": {"control": 10, "treatment": 30}}}, "test")
    events = (enrollments("enwiki", "control", 200) + enrollments("enwiki", "treatment", 200)
              + enrollments("dewiki", "control", dewiki[0])
              + enrollments("dewiki", "treatment", dewiki[1]))
    store = ResultsStore(registry.engine, registry.tables.prefix)
    scheduler = Scheduler(registry, store, Lake(tmp_path / "lake"), [lambda: Events(events)],
                          lambda: DuckDBEngine(threads=1))
    try:
        summary = scheduler.run_once()
        assert summary is not None and summary.stored == [EXPERIMENT], summary
        run = store.latest(EXPERIMENT)
    finally:
        scheduler.close()
        registry.close()
    assert run is not None
    # enwiki 1:1, dewiki 1:3: E = 400/2 + n_de/4 and 400/2 + 3 n_de/4.
    n_de = sum(dewiki)
    expected = [200 + n_de / 4, 200 + 3 * n_de / 4]
    oracle = scipy_stats.chisquare([200 + dewiki[0], 200 + dewiki[1]], expected)
    srm = run.report["srm"]
    assert list(srm["expected_units"].values()) == pytest.approx(expected)
    assert srm["p_value"] == pytest.approx(oracle.pvalue, rel=1e-9)
    check = next(c for c in run.health if c["check"] == "srm")
    assert check["ok"] is healthy
