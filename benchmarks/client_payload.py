"""Client payload weight per page: the signed bootstrap beside sending the whole config.

For 10, 100 and 1,000 active experiments, of which 10 run on the client, it prints the bytes
(raw and gzip level 6) of:
- the rendered bootstrap block (signed envelope in a ``<script type="application/json">``) of a
  unit enrolled in all 10 client experiments (every client experiment at rate 1: the worst case);
- the same with hashed names;
- the OFREP bulk response for that unit (remote evaluation);
- the baseline: the whole config (every row, as ``GET /api/v1/experiments`` returns it), which a
  client that assigns in the browser would have to download.
Also the time to build, sign and render one bootstrap (median over many units).

Run: ``.venv/bin/python benchmarks/client_payload.py``. Target: bootstrap ≤ 2 KB gzip per page
whatever the number of server-only experiments.
"""

from __future__ import annotations

import gzip
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from splitlab.core.model import Experiment
from splitlab.sdk.bootstrap import render_bootstrap
from splitlab.sdk.client_payload import PayloadOptions, build_payload
from splitlab.sdk.signing import load_or_create_signer
from splitlab.service.ofrep import Context, evaluate

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
CLIENT = 10
FEATURES = ["sticky-header", "dark-mode", "search-suggest", "edit-button", "toc-pinned",
            "font-size", "reading-list", "donate-banner", "language-switch", "image-zoom"]


def experiments(total: int) -> list[Experiment]:
    """``total`` realistic rows: the first 10 run on the client (rate 1), the rest server-only."""
    rows = []
    for index in range(total):
        feature = FEATURES[index % len(FEATURES)]
        rows.append({
            "name": f"{feature}-{index:04d}-2026q4",
            "groups": ["control", "treatment"] if index % 3 else ["control", "b", "c"],
            "sample_rate": {"default": 1 if index < CLIENT else 0.1,
                            "0.5": ["enwiki", "dewiki"], "0": ["frwiki"]},
            "user_identifier_type": "edge-unique",
            "start": "2026-11-01T00:00:00Z", "end": "2027-01-01T00:00:00Z",
            "stream_name": "product_metrics.web_base",
            "schema_id": "/analytics/product_metrics/web/base/2.1.0",
            "contextual_attributes": ["page_namespace", "performer_is_logged_in"],
            "phase_index": 0, "version": 1,
        })
    return [Experiment.from_config(row) for row in rows]


def sizes(data: bytes) -> tuple[int, int]:
    return len(data), len(gzip.compress(data, 6))


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        signer = load_or_create_signer(Path(directory))
        print(f"{'active':>7} {'what':<42} {'raw B':>8} {'gzip B':>8}")
        for total in (10, 100, 1_000):
            catalogue = experiments(total)
            client = {e.name for e in catalogue[:CLIENT]}
            unit = {"edge-unique": "3f2a9c0e-reader"}
            plain = PayloadOptions(client_experiments=client)
            hashed = PayloadOptions(client_experiments=client, salt="Zk2v")
            rows = {
                "bootstrap (signed, plain names)": render_bootstrap(
                    signer.sign(build_payload(catalogue, unit, NOW, plain))),
                "bootstrap (signed, hashed names)": render_bootstrap(
                    signer.sign(build_payload(catalogue, unit, NOW, hashed))),
                "OFREP bulk response (client experiments)": json.dumps(
                    {"flags": [evaluate(e, Context("3f2a9c0e-reader", None), NOW)
                               for e in catalogue[:CLIENT]]}, separators=(",", ":")),
                "baseline: whole config": json.dumps(
                    [e.to_config() for e in catalogue], separators=(",", ":")),
            }
            for label, text in rows.items():
                raw, packed = sizes(text.encode("utf-8"))
                print(f"{total:>7} {label:<42} {raw:>8,} {packed:>8,}")
            timings = []
            for index in range(300):
                started = time.perf_counter()
                render_bootstrap(signer.sign(
                    build_payload(catalogue, {"edge-unique": f"reader-{index}"}, NOW, plain)))
                timings.append(time.perf_counter() - started)
            print(f"{total:>7} {'build + sign + render, median':<42} "
                  f"{statistics.median(timings) * 1e6:>8.0f} µs")


if __name__ == "__main__":
    main()
