"""End to end: ``sl-v2`` experiments created through the admin API of a real ``splitlab serve``
are evaluated identically by the server SDK, OFREP (through the official Python OpenFeature
provider), the browser SDK in headless Chromium, and the edge bins.

The oracle is ``tests/vectors/sl-v2.json`` (written by an independent JavaScript generator): every
experiment of the vectors without a layer or holdouts, and those with them that can run together
(their layers and holdouts created first as registry entities), is created as the vectors give
it, ``edge-unique`` so that the edge publishes it too, with no start or end (running from
creation). Each vector case's subject id, group and reason is then asked of:

- the server SDK: one :class:`splitlab.sdk.Client` per site over
  :class:`~splitlab.sdk.HttpConfigSource` on the server's config API;
- OFREP: ``openfeature.contrib.provider.ofrep`` against the server (the context carries the
  targeting key, the case's ``site`` and attributes); ``SPLIT`` when assigned, else ``DEFAULT``;
- the browser SDK: a page in Chromium gets the rows exactly as the config API returned them and
  resolves every case with ``resolveSlV2`` (screenshot: ``tmp/artifacts/sl-v2/everywhere.png``);
- the edge (``?authority=varnish&format=config``), which hashes with its own function, so per-unit
  answers cannot be compared: per site, each group's bucket range sits at its reduced share's
  offset and holds exactly percent × 1000 buckets of that site's split (the ``default`` where the
  site has no entry), and ranges never overlap.

One more check came from a disagreement this test found: a client of a site gives targeting that
site as the ``site`` attribute in ``resolve``/``get_assignment_for_user`` too, as its manager and
OFREP (whose context ``site`` is both) do.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ROOT, VECTORS, unavailable
from splitlab.sdk import Client, HttpConfigSource, MemoryEventSender
from tests.e2e.sdk_site import SdkHandler, run_page, serving
from tests.integration.serve_helpers import create_experiment, free_port
from tests.integration.serve_helpers import server as serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ADMIN_TOKEN = "everywhere-admin-token"
API_KEY = "everywhere-client-key"
ARTIFACTS = ROOT / "tmp" / "artifacts" / "sl-v2"
EDGE_URL = "/api/v1/experiments?authority=varnish&format=config"
BUCKETS = 100_000
DOMAINS = {"dewiki": "de.wikipedia.org", "frwiki": "fr.wikipedia.org",
           "eswiki": "es.wikipedia.org", "enwiki": "en.wikipedia.org"}
"""The vectors' sites and the domains Wikimedia serves them at (the built-in site catalog)."""

LAYERS = ("reading-layer", "ünï-layer")
HOLDOUTS = {"global-2026": 10, "reading-q3": 2.5}
"""The layers and holdouts the chosen layered experiments use, created as registry entities."""
LAYERED = {"vector-layer-left", "vector-layer-right", "vector-holdout", "vector-targeting"}
"""The vector experiments with a layer or holdouts that can run together: the others hold
overlapping ranges of one layer, or list ``global-2026`` at another percent."""
CASES = [c for c in json.loads((VECTORS / "sl-v2.json").read_text("utf-8"))["cases"]
         if ("layer" not in c["input"] and "holdouts" not in c["input"])
         or c["input"]["experiment"] in LAYERED]
EXPECTED = [{k: c["expected"][k] for k in ("group", "reason", "subject_id")} for c in CASES]


def vector_rows() -> dict[str, dict[str, Any]]:
    """One row per experiment of :data:`CASES`, as the vectors give it."""
    rows: dict[str, dict[str, Any]] = {}
    for case in CASES:
        given = case["input"]
        row = {"name": given["experiment"], "groups": given["groups"], "algorithm": "sl-v2",
               "traffic_split": given["traffic_split"], "user_identifier_type": "edge-unique",
               **{key: given[key] for key in ("targeting", "layer", "holdouts") if key in given}}
        assert rows.setdefault(row["name"], row) == row, f"{row['name']}: cases disagree"
    return rows


ROWS = vector_rows()


@dataclass(frozen=True)
class Published:
    url: str
    rows: list[dict[str, Any]]
    """The rows as ``GET /api/v1/experiments`` returned them."""


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """``splitlab serve`` (admin token, client API key) with the rows created through the
    admin API."""
    data = tmp_path_factory.mktemp("everywhere")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"SPLITLAB_ADMIN_TOKEN": ADMIN_TOKEN, "SPLITLAB_CLIENT_API_KEY": API_KEY}
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with serve(data / "data", port, workers=1, env=env, log=data / "serve.log"):
        for kind, entity in [*(("layers", {"name": n}) for n in LAYERS),
                             *(("holdouts", {"name": n, "percent": p})
                               for n, p in HOLDOUTS.items())]:
            made = httpx.post(f"{url}/api/v1/{kind}", json=entity, headers=admin, timeout=10)
            assert made.status_code == 201, made.text
        for row in ROWS.values():
            stored = create_experiment(url, ADMIN_TOKEN, row)
            assert stored["status"] == "running", stored
        time.sleep(0.6)  # the OFREP source re-reads the registry at most every 0.5 s
        served = httpx.get(f"{url}/api/v1/experiments", timeout=10)
        assert served.status_code == 200
        yield Published(url, served.json())


def test_the_selection_covers_what_it_is_meant_to(published: Published) -> None:
    assert {"vector-per-site", "vector-w-1-2-3", "vector-targeting-exists",
            "vector-no-default", "vector-share-limit", *LAYERED} <= set(ROWS)
    assert {"holdout", "layer", "targeting"} <= {e["reason"] for e in EXPECTED}
    assert {r["name"] for r in published.rows} == set(ROWS)
    assert all(r["algorithm"] == "sl-v2" for r in published.rows)
    reasons = Counter(e["reason"] for e in EXPECTED)
    assert reasons["assigned"] > 100 and reasons["not_sampled"] > 100
    assert {c["input"]["site"] for c in CASES} == {None, *DOMAINS}
    assert any(c["input"].get("attributes") for c in CASES)


def test_server_sdk_over_the_config_api(published: Published) -> None:
    source = HttpConfigSource(f"{published.url}/api/v1/experiments")
    clients = {site: Client(source, MemoryEventSender(), site)
               for site in {c["input"]["site"] for c in CASES}}
    wrong = []
    for case, expected in zip(CASES, EXPECTED, strict=True):
        given = case["input"]
        client = clients[given["site"]]
        found = client.resolve(given["identifier"], given["experiment"], given.get("attributes"))
        got = {"group": found.group, "reason": str(found.reason), "subject_id": found.subject_id}
        group = client.get_assignment_for_user(given["identifier"], given["experiment"],
                                               given.get("attributes"))
        if got != expected or group != expected["group"]:
            wrong.append((case["id"], got, group))
    assert source.load().error is None
    assert wrong == []
    assert len(CASES) > 600


def test_server_sdk_takes_its_site_as_the_site_attribute(published: Published) -> None:
    """A case whose attributes name a site, on a row split alike on every site, answers the same
    on a client of that site without the attribute: the client's site is what a condition sees
    as ``site`` (as in the manager, and in OFREP, whose context ``site`` is both)."""
    source = HttpConfigSource(f"{published.url}/api/v1/experiments")
    asked = 0
    for case, expected in zip(CASES, EXPECTED, strict=True):
        given = case["input"]
        attributes = dict(given.get("attributes", {}))
        site = attributes.pop("site", None)
        if site is None or given["site"] is not None or set(given["traffic_split"]) != {"default"}:
            continue
        client = Client(source, MemoryEventSender(), site)
        found = client.resolve(given["identifier"], given["experiment"], attributes)
        assert (found.group, found.reason, found.subject_id) == (
            expected["group"], expected["reason"], expected["subject_id"]), case["id"]
        manager = client.manager(anonymous_id=str(given["identifier"]), attributes=attributes)
        assert manager.get_experiment(given["experiment"]).get_assigned_group() == \
            expected["group"], case["id"]
        asked += 1
    assert asked >= 6


def ofrep_context(given: Mapping[str, Any]) -> dict[str, Any]:
    """The case's attributes, and its site (the one whose split applies) as ``site``. (A case
    without a site whose attributes name one only occurs for a row with no per-site split.)"""
    attributes = dict(given.get("attributes", {}))
    if given["site"] is not None:
        assert attributes.setdefault("site", given["site"]) == given["site"]
    return attributes


def test_ofrep_through_the_official_provider(published: Published) -> None:
    try:
        from openfeature.contrib.provider import ofrep
    except ImportError:
        unavailable("openfeature-provider-ofrep is not installed (the dev extra)")
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.flag_evaluation import Reason

    domain = "splitlab-everywhere"
    api.set_provider(ofrep.OFREPProvider(
        published.url, headers_factory=lambda: {"Authorization": f"Bearer {API_KEY}"}),
        domain=domain)
    features = api.get_client(domain)
    wrong, asked = [], 0
    try:
        for case, expected in zip(CASES, EXPECTED, strict=True):
            given = case["input"]
            key = str(given["identifier"])
            if key == "":
                continue  # no targeting key in OpenFeature (TARGETING_KEY_MISSING)
            asked += 1
            details = features.get_string_details(
                given["experiment"], "fallback",
                EvaluationContext(targeting_key=key, attributes=ofrep_context(given)))
            metadata = details.flag_metadata
            split = details.reason == Reason.SPLIT
            got = {"group": details.value if split else None, "reason": metadata.get("reason"),
                   "subject_id": metadata.get("subject_id"), "enrolled": metadata.get("enrolled"),
                   "openfeature": details.reason, "error": details.error_code}
            enrolled = expected["reason"] == "assigned"
            want = {**expected, "subject_id": expected["subject_id"] if enrolled else None,
                    "enrolled": enrolled, "error": None,
                    "openfeature": Reason.SPLIT if enrolled else Reason.DEFAULT}
            if got != want:
                wrong.append((case["id"], got))
    finally:
        api.clear_providers()
    assert wrong == []
    assert asked == sum(1 for c in CASES if c["input"]["identifier"] != "") > 600


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>sl-v2 everywhere: the browser SDK</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}
.bad{color:#b32424}.good{color:#14866d}</style></head>
<body><h1>sl-v2 rows from <code>splitlab serve</code>, browser SDK</h1><p id="status">running…</p>
<table id="experiments"><thead><tr><th>experiment</th><th>cases</th><th>as expected</th>
<th>assigned</th></tr></thead><tbody></tbody></table>
<script type="module">
import { resolveSlV2 } from "/splitlab-sdk/index.js";

const rows = await (await fetch("/config/experiments.json")).json();
const cases = await (await fetch("/cases.json")).json();
const byName = Object.fromEntries(rows.map((row) => [row.name, row]));
const results = [];
const tally = {};
let matched = 0;
for (const { id, identifier, experiment, site, attributes, expected } of cases) {
  const got = await resolveSlV2(identifier, byName[experiment], site, attributes);
  results.push(got);
  const same = got.group === expected.group && got.reason === expected.reason
    && got.subject_id === expected.subject_id;
  matched += same ? 1 : 0;
  const entry = tally[experiment] ??= [0, 0, 0];
  entry[0] += 1;
  entry[1] += same ? 1 : 0;
  entry[2] += got.reason === "assigned" ? 1 : 0;
}
const body = document.querySelector("#experiments tbody");
for (const [name, [count, same, assigned]] of Object.entries(tally).sort()) {
  const cells = [name, count, same, assigned].map((text) => {
    const cell = document.createElement("td");
    cell.textContent = text;
    return cell;
  });
  cells[2].className = same === count ? "good" : "bad";
  body.insertRow().append(...cells);
}
const status = document.getElementById("status");
status.textContent = `${matched} of ${cases.length} cases as expected over ${rows.length} rows ` +
  `served by the config API; ${navigator.userAgent}`;
status.className = matched === cases.length ? "good" : "bad";
window.everywhere = results;
</script></body></html>
"""


def page_handler(rows: list[dict[str, Any]]) -> type[SdkHandler]:
    cases = [{"id": c["id"], "identifier": c["input"]["identifier"],
              "experiment": c["input"]["experiment"], "site": c["input"]["site"],
              "attributes": c["input"].get("attributes", {}), "expected": expected}
             for c, expected in zip(CASES, EXPECTED, strict=True)]
    files = {"/": (PAGE.encode(), "text/html; charset=utf-8"),
             "/config/experiments.json": (json.dumps(rows).encode(), "application/json"),
             "/cases.json": (json.dumps(cases).encode(), "application/json")}

    class Handler(SdkHandler):
        """The page, the served rows, the cases and the SDK's modules."""

        def get(self, path: str) -> None:
            if path in files:
                self.send(*files[path])
            else:
                self.send_error(HTTPStatus.NOT_FOUND)

    return Handler


@pytest.mark.e2e
def test_browser_sdk_in_chromium(published: Published) -> None:
    with serving(page_handler(published.rows)) as origin:
        run = run_page(origin + "/", "everywhere", ARTIFACTS / "everywhere.png")
    assert run.errors == []
    assert len(run.value) == len(CASES) > 600
    wrong = [(case["id"], got)
             for case, got, expected in zip(CASES, run.value, EXPECTED, strict=True)
             if got != expected]
    assert wrong == []
    assert run.status.startswith(
        f"{len(CASES)} of {len(CASES)} cases as expected over {len(ROWS)} rows")


def edge_groups(split: Mapping[str, float] | None, groups: list[str]) -> dict[str, list[int]]:
    """DESIGN.md's edge ranges of one site's split, written out: each group with a positive
    percent gets ``[offset, offset + percent × 1000 - 1]``, its offset the floor of
    ``BUCKETS × (reduced shares before it) / (all reduced shares)`` in group order."""
    weights = [round((split or {}).get(g, 0) * 1000) for g in groups]
    if not any(weights):
        return {}
    divisor = math.gcd(*(w for w in weights if w))
    shares = [w // divisor for w in weights]
    ranges, before = {}, 0
    for group, weight, share in zip(groups, weights, shares, strict=True):
        offset = before * BUCKETS // sum(shares)
        if weight:
            ranges[group] = [offset, offset + weight - 1]
        before += share
    return ranges


def test_edge_bins_follow_each_site_split(published: Published, refdata: Path) -> None:
    from jsonschema import Draft4Validator

    response = httpx.get(published.url + EDGE_URL, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    document = response.json()
    schema = json.loads((refdata / "wikimedia-varnish-abtests-schema.json").read_text())
    Draft4Validator(schema).validate(document)
    checked = 0
    for name, row in ROWS.items():
        split, groups = row["traffic_split"], row["groups"]
        default = edge_groups(split.get("default"), groups)
        if not default and not any(edge_groups(s, groups) for s in split.values()):
            assert name not in document  # no bucket anywhere: nothing for the edge
            continue
        domains = document[name]["domains"]
        for site, domain in DOMAINS.items():
            want = edge_groups(split.get(site, split.get("default")), groups)
            assert domains.get(domain, {}).get("groups", {}) == want, (name, site)
            checked += 1
        own = {DOMAINS[site] for site in split if site != "default"}
        for domain, entry in domains.items():
            if domain not in own:  # every other domain of the catalog: the default split
                assert entry["groups"] == default, (name, domain)
            spans = sorted(entry["groups"].values())  # inside 0..99999, none overlapping
            ends = [end for span in spans for end in span]
            assert ends == sorted(ends) and ends[0] >= 0 and ends[-1] < BUCKETS, (name, domain)
            assert all(last < first for (_, last), (first, _) in pairwise(spans)), (name, domain)
        assert (len(domains) > len(own)) == bool(default), name
    assert checked >= 4 * 15
