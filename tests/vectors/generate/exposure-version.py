"""The rows of tests/vectors/exposure-version.json, and the file itself from PHP's answers.

The expected values are not computed here: they come from running Test Kitchen's own PHP on these
rows (exposure-version.md says how). Deterministic: the same rows every run.

Usage:
    python tests/vectors/generate/exposure-version.py inputs > /tmp/inputs.json
    (run Test Kitchen's PHP on /tmp/inputs.json, writing {id: exposure_version} to /tmp/php.json)
    python tests/vectors/generate/exposure-version.py assemble /tmp/php.json \
        > tests/vectors/exposure-version.json
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

BASE = {"user_identifier_type": "edge-unique", "stream_name": "product_metrics.web_base",
        "schema_id": "/analytics/product_metrics/web/base/2.1.0", "contextual_attributes": []}
RATES: list[Any] = [0, 1, 0.0, 1.0, 1e-05, 0.0001, 0.001, 0.1, 0.2, 0.5, 0.05, 0.01, 0.25,
                    1 / 3, 2 / 3, 0.1 + 0.2, 0.999999999999, 1e-07, 1e-10, 5e-324,
                    2.2250738585072014e-308, 1e15, 1e16, 1e17, 1e20, 1.5e300, 123456789.123,
                    -0.0, 12.5, 100.0, 1e-4 * 3, 0.30000000000000004, 7e-06]
NAMES = ["sticky-header-2026", "Ünïcödé-exp", "用户实验", "emoji-🎉-test", "تجربة",
         "a/b/c", "quote\"name", "back\\slash", "tab\tname", "line\nbreak", "ctl\u0001x",
         "sep\u2028\u2029", "del\u007f", "<html>&'", "", " spaced ", "percent%20", "ß"]
GROUP_WORDS = ["control", "treatment", "a", "B", "b", "A", "10", "9", "2", "1", "01", "1.0",
               "1e1", "9a", "1a", "010", "1.5", "0", "00", "-1", "1e-3", ".5", "5.",
               "9223372036854775807", "9223372036854775808", "99999999999999999999",
               "100000000000000000000", "1e400", "notify-48h", "notify-7d", "é", "Z", "z",
               "treatment-2", "treatment-10", "v1.2", "v1.10"]


def case(cases: list[dict[str, Any]], case_id: str, **fields: Any) -> None:
    row = dict(BASE, name=fields.pop("name", case_id), groups=["control", "treatment"],
               sample_rate={"default": 0.1})
    for key, value in fields.items():
        if value is DROP:
            row.pop(key, None)
        else:
            row[key] = value
    cases.append({"id": case_id, "input": row})


DROP = object()


def rows() -> list[dict[str, Any]]:
    """Every case as ``{"id", "input"}``, ``input`` being a row as splitlab or another server
    might serve it."""
    rng = random.Random(16)
    cases: list[dict[str, Any]] = []
    for i, rate in enumerate(RATES):
        case(cases, f"rate-default-{i}-{rate!r}", sample_rate={"default": rate})
        case(cases, f"rate-site-{i}-{rate!r}",
             sample_rate={"default": 0.1, repr(rate): ["enwiki", "dewiki"]})
    for i, name in enumerate(NAMES):
        case(cases, f"name-{i}", name=name)
    for big in [10**17, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**20, 10**30]:
        case(cases, f"integer-literal-{big}", sample_rate={"default": big})
    maps: list[Any] = [
        {"default": 0.1, "0.5": ["enwiki", "dewiki"], "0": ["frwiki"], "1": ["jawiki"]},
        {"0": ["frwiki"], "default": 0.1},
        {"0": ["a"], "1": ["b"]},
        {"1": ["b"], "0": ["a"]},
        {"0": 0.5},
        {"1": 0.5},
        {},
        {"default": 0.2, "1e-05": ["enwiki"], "0.00001": ["dewiki"]},
        {"default": 1, "0.25": ["enwiki"], "0.5": ["dewiki", "frwiki"], "0.75": ["jawiki"]},
        {"0.5": ["enwiki"], "default": 0.01},
        {"default": 0.1, "0.5": []},
        {"default": 0.1, "a/b": ["x/y"], "é": ["ü"]},
        0.5, 1, 0, None, [0.1, 0.2],
    ]
    for i, rate_map in enumerate(maps):
        case(cases, f"rate-map-{i}", sample_rate=rate_map)
    case(cases, "rate-missing", sample_rate=DROP)
    orders = [["treatment", "control"], ["10", "9", "2", "1"], ["1", "2", "9", "10"],
              ["10", "1a", "9"], ["9", "10", "1a"], ["1a", "9", "10"], ["1", "01", "1.0", "1e0"],
              ["b", "a", "B", "A"], ["é", "z", "Z", "e"],
              ["9223372036854775808", "9223372036854775807"],
              ["99999999999999999999", "100000000000000000000"], ["1e400", "1e401", "9"],
              ["only"], [], ["-1", "0", "00", ".5", "5."]]
    for i, groups in enumerate(orders):
        case(cases, f"groups-order-{i}", groups=groups)
    for size in [2, 3, 4, 5, 6, 7, 8, 11, 16, 17, 18, 24, 33, 64, 100, 254]:
        for k in range(3):
            groups = [rng.choice(GROUP_WORDS) if rng.random() < 0.6 else str(rng.randint(0, 200))
                      for _ in range(size)]
            case(cases, f"groups-random-{size}-{k}", groups=groups)
    case(cases, "groups-missing", groups=DROP)
    case(cases, "groups-null", groups=None)
    for unit in ["mw-user", "edge-unique", "session"]:
        case(cases, f"unit-{unit}", user_identifier_type=unit)
    case(cases, "unit-missing", user_identifier_type=DROP)
    streams: list[Any] = ["product_metrics.web_base", "mediawiki.product_metrics/x", None, DROP,
                          "ström", ""]
    for i, stream in enumerate(streams):
        case(cases, f"stream-{i}", stream_name=stream)
    schemas: list[Any] = [DROP, None, "", "/analytics/product_metrics/web/base/1.3.0",
                          "/analytics/mediawiki/x/1.0.0", "https://schema.example/a/b/1.0.0"]
    for i, schema in enumerate(schemas):
        case(cases, f"schema-{i}", schema_id=schema)
    attributes: list[Any] = [DROP, None, [], ["page_namespace"],
                             ["performer_is_logged_in", "page_namespace", "mediawiki_skin"],
                             ["a/b", "é", "tab\t"], {"0": "x"}, {"k": "v"}]
    for i, attrs in enumerate(attributes):
        case(cases, f"attributes-{i}", contextual_attributes=attrs)
    case(cases, "extra-fields", start="2026-01-01T00:00:00Z", end=None, version=7,
         exposure_version="0000000000000000", phase_index=2, sample_unit="pageview")
    for k in range(60):
        case(cases, f"random-{k}",
             name=rng.choice(NAMES) + str(k),
             user_identifier_type=rng.choice(["mw-user", "edge-unique", "session"]),
             groups=[rng.choice(GROUP_WORDS) for _ in range(rng.randint(1, 7))],
             sample_rate={"default": rng.choice(RATES),
                          **{repr(rng.choice(RATES)): sorted(rng.sample(
                              ["enwiki", "dewiki", "frwiki", "jawiki", "eswiki"], 2))
                             for _ in range(rng.randint(0, 3))}},
             contextual_attributes=rng.sample(["page_namespace", "performer_is_logged_in",
                                               "mediawiki_skin", "performer_edit_count_bucket"],
                                              rng.randint(0, 3)))
    return cases


def main() -> None:
    cases = rows()
    if sys.argv[1:2] == ["inputs"]:
        document: dict[str, Any] = {"cases": cases}
    elif sys.argv[1:2] == ["assemble"]:
        with open(sys.argv[2], encoding="utf-8") as answers:
            expected = json.load(answers)
        document = {
            "function": "exposure_version",
            "generator": "Test Kitchen's PHP (ConfigsFetcher at cb716f4d, PHP 8.2 CLI) run on the "
                         "rows of tests/vectors/generate/exposure-version.py; see "
                         "tests/vectors/generate/exposure-version.md",
            "cases": [{"id": c["id"], "input": c["input"], "expected": expected[c["id"]]}
                      for c in cases],
        }
    else:
        sys.exit(__doc__)
    json.dump(document, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
