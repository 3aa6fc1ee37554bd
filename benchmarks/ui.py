"""Dashboard page times with 200 experiments in the registry (target: under 100 ms a page).

Runs the whole application in process (Starlette's test client: no network, one request at a
time) on a fresh SQLite registry with 200 experiments, a stored results run for each and 50
runs of history for the one whose page is measured; prints the median and p95 per page beside
``GET /healthz`` as the same-run baseline.

    .venv/bin/python benchmarks/ui.py [--requests 60]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.testclient import TestClient

from splitlab.results.store import ResultsStore
from splitlab.service.app import create_app
from splitlab.service.settings import Settings

EXPERIMENTS = 200
HISTORY = 50


def seed(client: TestClient) -> None:
    registry = client.app.state.components[1].registry  # type: ignore[attr-defined]
    store = ResultsStore(registry.engine, registry.tables.prefix)
    now = datetime.now(UTC)
    for n in range(EXPERIMENTS):
        name = f"bench-experiment-{n:04d}"
        registry.create("experiment", {
            "name": name, "groups": ["control", "treatment"], "sample_rate": {"default": 0.1},
            "user_identifier_type": ["mw-user", "edge-unique", "session"][n % 3]}, "bench")
        runs = HISTORY if n == 0 else 1
        for r in range(runs):
            report = {"groups": {"control": 1000 + r, "treatment": 990 + r},
                      "units_total": 1990 + 2 * r, "units_in_multiple_groups": 0,
                      "srm": {"p_value": 0.8, "flagged": False, "alpha": 0.001},
                      "by_site": {"enwiki": {"control": 1000, "treatment": 990}},
                      "metrics": [{"name": "clicked", "kind": "proportion", "cuped": False,
                                   "groups": [{"group": "control", "n": 1000, "mean": 0.1},
                                              {"group": "treatment", "n": 990, "mean": 0.11,
                                               "effect": 0.01, "relative_effect": 0.1,
                                               "ci": [0.0, 0.02], "relative_ci": [0.0, 0.2],
                                               "p_value": 0.04, "p_value_adjusted": 0.04}]}],
                      "correction": "holm"}
            health = [{"check": "srm", "ok": True, "reason": "no mismatch"}]
            store.save_run(name, now - timedelta(minutes=runs - r), "t", "duckdb", report,
                           health)


def measure(client: TestClient, method: str, path: str, count: int,
            data: dict[str, str] | None = None) -> tuple[float, float]:
    times = []
    for _ in range(count):
        began = time.perf_counter()
        answer = client.request(method, path, data=data)
        times.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), admin_token="bench-token-0123456789")
        with TestClient(create_app(settings), base_url="http://testserver") as client:
            seed(client)
            csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/debug").text)
            assert csrf is not None
            pages = [("GET", "/healthz", None), ("GET", "/ui", None),
                     ("GET", "/ui?status=running&q=00", None),
                     ("GET", "/ui/experiments/bench-experiment-0000", None),
                     ("GET", "/ui/experiments/bench-experiment-0000/results", None),
                     ("POST", "/ui/debug", {"csrf": csrf.group(1), "identifier": "12345"})]
            print(f"{EXPERIMENTS} experiments, {HISTORY} runs of history on the measured page, "
                  f"{args.requests} requests each")
            print("| page | median ms | p95 ms |\n| --- | ---: | ---: |")
            for method, path, data in pages:
                median, p95 = measure(client, method, path, args.requests, data)
                print(f"| `{method} {path}` | {median:.1f} | {p95:.1f} |")


if __name__ == "__main__":
    main()
