"""The intake's body path without HTTP: parse, inflate, repair, validate (µs per event).

Each figure has a same-run baseline: orjson.loads for parsing, reading the plain bytes for
inflating, and jsonschema-rs's validator alone (what splitlab used before accepting EventGate's
forms) for validating. Run: ``.venv/bin/python benchmarks/intake_decode.py``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import timeit
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import jsonschema_rs
import orjson

from splitlab.intake.body import Inflater, parse_json
from splitlab.intake.schemas import SchemaRepository

SCHEMA = "/analytics/product_metrics/web/base/2.1.0"


def event(i: int) -> dict[str, Any]:
    """A realistic web base 2.1.0 event, as the intake validates it (meta.dt and id set)."""
    return {
        "$schema": SCHEMA, "action": "click", "action_source": "toolbar",
        "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
        "meta": {"stream": "product_metrics.web_base", "domain": "en.wikipedia.org",
                 "dt": "2026-11-22T00:00:00.000Z", "id": f"00000000-0000-4000-8000-{i:012d}",
                 "uri": "https://en.wikipedia.org/w/index.php?title=Special:Search&search=x"},
        "dt": "2026-11-22T00:00:00.000Z",
        "page": {"id": 15580374, "title": "Main Page", "namespace_id": 0, "revision_id": 1},
        "experiment": {"enrolled": "sticky-header-2026", "assigned": "treatment",
                       "subject_id": "a" * 64, "sampling_unit": "edge-unique",
                       "coordinator": "default"},
    }


def per_event(fn: Callable[[], object], events: int, repeat: int) -> float:
    """Best of ``repeat`` runs, in microseconds per event."""
    number = max(1, 2000 // events)
    best = min(timeit.repeat(fn, number=number, repeat=repeat))
    return best / number / events * 1e6


def inflate(body: bytes, encoding: str) -> bytes:
    inflater = Inflater(encoding, 64 << 20)
    for start in range(0, len(body), 65536):
        inflater.feed(body[start:start + 65536])
    return inflater.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    n, repeat = args.batch, args.repeat
    batch = [event(i) for i in range(n)]
    body = orjson.dumps(batch)
    cut = body.replace(b'"Main Page"', b'"Main \\ud83d"', 1)
    squeezed = gzip.compress(body)
    document = json.loads(files("splitlab").joinpath(
        "data", "schemas", *SCHEMA.strip("/").split("/")[:-1], "2.1.0.json").read_text())
    builtin = jsonschema_rs.Draft7Validator(document, validate_formats=True)
    ours = SchemaRepository().get(SCHEMA)
    piped = [event(i) for i in range(n)]
    for item in piped:
        item["meta"]["uri"] += "|x"
        item["dt"] = "2026-11-22 00:00:00+0100"
    rows = [
        ("parse: orjson.loads (baseline)", per_event(lambda: orjson.loads(body), n, repeat)),
        ("parse: parse_json, plain body", per_event(lambda: parse_json(body), n, repeat)),
        ("parse: parse_json, one lone surrogate", per_event(lambda: parse_json(cut), n, repeat)),
        ("read: identity (baseline)", per_event(lambda: inflate(body, "identity"), n, repeat)),
        ("read: gzip, inflated", per_event(lambda: inflate(squeezed, "gzip"), n, repeat)),
        ("validate: jsonschema-rs own formats (baseline)",
         per_event(lambda: [builtin.validate(e) for e in batch], n, repeat)),
        ("validate: splitlab, the same events",
         per_event(lambda: [ours.validate(e) for e in batch], n, repeat)),
        ("validate: splitlab, uri with '|', dt '... +0100'",
         per_event(lambda: [ours.validate(e) for e in piped], n, repeat)),
    ]
    print(f"batch of {n} events, {len(body)} bytes ({len(squeezed)} gzipped); best of {repeat}")
    for name, micros in rows:
        print(f"{name:48s} {micros:8.2f} µs/event")


if __name__ == "__main__":
    main()
