"""/metrics with several workers: any worker's scrape counts the requests of all of them."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.serve_helpers import free_port, server

pytestmark = pytest.mark.integration

EVENT = {"$schema": "/analytics/product_metrics/web/base/2.1.0",
         "meta": {"stream": "product_metrics.web_base", "domain": "example.org"},
         "dt": "2026-11-22T00:00:00Z", "action": "click",
         "agent": {"client_platform": "mediawiki_js"}}


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


def test_a_scrape_of_any_worker_counts_every_workers_requests(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server(tmp_path / "data", port, workers=2):
        for _ in range(120):  # a new connection each time, so both workers take some
            assert httpx.get(f"{url}/api/v1/experiments").status_code == 200
        for _ in range(15):
            assert httpx.post(f"{url}/v1/events", json=[EVENT, EVENT]).status_code == 201
        pids = {m.group(1) for f in (tmp_path / "data" / "metrics").iterdir()
                if (m := re.search(r"_(\d+)\.db$", f.name))}
        assert len(pids) >= 2, f"only one worker wrote metrics: {pids}"
        for _ in range(6):  # scrapes land on either worker; each must see the whole count
            text = httpx.get(f"{url}/metrics").text
            served = sample(text, "splitlab_http_requests_total", route="/api/v1/experiments",
                            method="GET", status="200")
            assert served == 120
            accepted = sum(f.value for family in text_string_to_metric_families(text)
                           for f in family.samples
                           if f.name == "splitlab_events_accepted_total")
            assert accepted == 30
