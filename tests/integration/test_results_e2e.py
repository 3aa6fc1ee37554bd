"""Continuous results end to end, with no CLI step between the events and the results.

A real ``splitlab serve --results-interval 5`` (two worker processes, each with a scheduler; the
lease lets one compute) receives the scenario of :mod:`results_scenario` at ``/v1/events``: both
event shapes, re-sent events, a unit in two groups, 7% of one group's enrollments lost. The
results API must then count exactly the units that were sent per group, flag the sample ratio
mismatch and the failing health check, and ``/metrics`` must show the same numbers, the live
exposure counter and the metric named through the catalog's admin API.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from splitlab.service.results_api import SCRAPE_CACHE_SECONDS
from tests.integration.results_scenario import (
    EXPERIMENT,
    ROW,
    gauge,
    post_all,
    traffic,
    wait_for_results,
)
from tests.integration.serve_helpers import create_experiment, free_port, server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("duckdb")
TOKEN = "results-e2e-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def test_events_become_stored_results_gauges_and_health(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    plan = traffic()
    with server(tmp_path / "data", port, workers=2, env={"SPLITLAB_ADMIN_TOKEN": TOKEN},
                log=tmp_path / "serve.log", args=["--results-interval", "5"]):
        create_experiment(url, TOKEN, ROW)
        before = httpx.get(f"{url}/api/v1/experiments/{EXPERIMENT}/results")
        assert before.status_code == 404 and "no results" in before.json()["message"]
        metric = httpx.put(f"{url}/api/v1/metrics/exposed", headers=ADMIN,
                           json={"kind": "proportion", "filter": {"action": "experiment_exposure"}})
        assert metric.status_code == 200, metric.text
        bad = httpx.put(f"{url}/api/v1/metrics/broken", headers=ADMIN, json={"kind": "median"})
        assert bad.status_code == 422 and "kind must be one of" in bad.json()["message"]
        attached = httpx.put(f"{url}/api/v1/experiments/{EXPERIMENT}/metrics", headers=ADMIN,
                             json={"metrics": ["exposed"]})
        assert attached.status_code == 200, attached.text
        post_all(url, plan.events)

        latest = wait_for_results(url, plan.expected)
        assert latest["units_in_multiple_groups"] == plan.mixed == 1
        assert latest["units_total"] == sum(plan.expected.values()) + 1
        assert latest["srm"]["flagged"] is True and latest["srm"]["p_value"] < 0.001
        assert latest["events_through"] and latest["computed_at"]
        assert latest["metrics"][0]["name"] == "exposed"
        assert [g["mean"] for g in latest["metrics"][0]["groups"]] == [1.0, 1.0]
        health = {c["check"]: c["ok"] for c in latest["health"]}
        assert health == {"srm": False, "multiple_groups": True, "no_events": True,
                          "error_share": True, "metrics": True}

        history = httpx.get(f"{url}/api/v1/experiments/{EXPERIMENT}/results/history",
                            params={"limit": 2}).json()
        assert history["total"] >= 1 and len(history["runs"]) <= 2
        assert history["runs"][0]["computed_at"] == latest["computed_at"] or history["total"] > 1
        ids = [run["computed_at"] for run in history["runs"]]
        assert ids == sorted(ids, reverse=True)

        metrics = httpx.get(f"{url}/metrics").text
        for group, units in plan.expected.items():
            assert gauge(metrics, "splitlab_experiment_units", experiment=EXPERIMENT,
                         group=group) == units
        p_value = gauge(metrics, "splitlab_experiment_srm_p_value", experiment=EXPERIMENT)
        assert p_value is not None and p_value < 0.001
        assert gauge(metrics, "splitlab_experiment_health", experiment=EXPERIMENT,
                     check="srm") == 0
        assert gauge(metrics, "splitlab_experiment_health", experiment=EXPERIMENT,
                     check="multiple_groups") == 1
        for group, exposures in plan.exposures.items():
            assert gauge(metrics, "splitlab_intake_experiment_events_total",
                         experiment=EXPERIMENT, group=group,
                         action="experiment_exposure") == exposures

        ended = httpx.post(f"{url}/api/v1/experiments/{EXPERIMENT}/end", headers=ADMIN)
        assert ended.status_code == 200
        time.sleep(SCRAPE_CACHE_SECONDS + 0.5)
        after = httpx.get(f"{url}/metrics").text  # an ended experiment's series are gone
        assert gauge(after, "splitlab_experiment_units", experiment=EXPERIMENT,
                     group="control") is None
