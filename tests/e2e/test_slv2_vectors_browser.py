"""Every case of ``tests/vectors/sl-v2.json`` evaluated by the browser SDK in headless Chromium.

The SDK's ES modules (``clients/js/src``, as ``examples/client_demo`` serves them under
``/splitlab-sdk/``) and the vectors are served from a local HTTP server on ``localhost`` (a secure
context, so WebCrypto's SHA-256 is there); a page imports ``resolveSlV2`` and ``splitFor``, resolves
every case and tries every invalid row, and the answers are compared here with the vectors'
expected subject id, group and reason, as ``clients/js/test/sl-v2.test.js`` does in node. The
page's screenshot (counts per reason) goes to ``tmp/artifacts/sl-v2/vectors.png``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus

import pytest
from sdk_site import SdkHandler, run_page, serving

from conftest import ROOT, VECTORS

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "tmp" / "artifacts" / "sl-v2"
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>sl-v2 vectors in the browser</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}
.bad{color:#b32424}.good{color:#14866d}</style></head>
<body><h1>sl-v2 vectors, browser SDK</h1><p id="status">running…</p>
<table id="reasons"><thead><tr><th>reason</th><th>cases</th><th>as expected</th></tr></thead>
<tbody></tbody></table>
<script type="module">
import { resolveSlV2, splitFor } from "/splitlab-sdk/index.js";

const vectors = await (await fetch("/vectors/sl-v2.json")).json();
const results = [];
const invalid = {};
const tally = {};
let matched = 0;
for (const { input, expected } of vectors.cases) {
  const { identifier, site, attributes, experiment, tk_v1: _, ...rest } = input;
  const row = { name: experiment, algorithm: "sl-v2", ...rest };
  const got = await resolveSlV2(identifier, row, site, attributes);
  results.push(got);
  const same = got.group === expected.group && got.reason === expected.reason
    && got.subject_id === expected.subject_id;
  matched += same ? 1 : 0;
  const entry = tally[expected.reason] ??= [0, 0];
  entry[0] += 1;
  entry[1] += same ? 1 : 0;
}
for (const { id, input } of vectors.invalid) {
  try {
    splitFor(input.traffic_split, input.groups, null);
    invalid[id] = null;
  } catch (error) {
    invalid[id] = `${error.name}: ${error.message}`;
  }
}
const body = document.querySelector("#reasons tbody");
for (const [reason, [cases, same]] of Object.entries(tally).sort()) {
  const row = body.insertRow();
  row.insertCell().textContent = reason;
  row.insertCell().textContent = cases;
  const cell = row.insertCell();
  cell.textContent = same;
  cell.className = same === cases ? "good" : "bad";
}
const refused = Object.values(invalid).filter((e) => e && e.startsWith("RangeError")).length;
const status = document.getElementById("status");
status.textContent = `${matched} of ${vectors.cases.length} cases as expected; ` +
  `${refused} of ${vectors.invalid.length} invalid rows refused; ${navigator.userAgent}`;
status.className = matched === vectors.cases.length ? "good" : "bad";
window.vectorResults = { results, invalid };
</script></body></html>
"""


class Handler(SdkHandler):
    """The page, the SDK's modules and the vectors; 404 for anything else."""

    def get(self, path: str) -> None:
        if path == "/":
            self.send(PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/vectors/sl-v2.json":
            self.send((VECTORS / "sl-v2.json").read_bytes(), "application/json")
        else:
            self.send_error(HTTPStatus.NOT_FOUND)


@pytest.fixture
def origin() -> Iterator[str]:
    with serving(Handler) as url:
        yield url


def test_chromium_resolves_every_sl_v2_vector_as_expected(origin: str) -> None:
    vectors = json.loads((VECTORS / "sl-v2.json").read_text(encoding="utf-8"))
    run = run_page(origin + "/", "vectorResults", ARTIFACTS / "vectors.png")
    found, agent, status = run.value, run.agent, run.status
    assert run.errors == []
    assert "HeadlessChrome" in agent or "Chrome" in agent
    assert len(vectors["cases"]) > 500 and len(found["results"]) == len(vectors["cases"])
    wrong = [case["id"] for case, got in zip(vectors["cases"], found["results"], strict=True)
             if got != {key: case["expected"][key] for key in ("group", "reason", "subject_id")}]
    assert wrong == []
    assert len(vectors["invalid"]) >= 4
    refused = {case["id"]: found["invalid"][case["id"]] for case in vectors["invalid"]}
    assert all(e is not None and e.startswith("RangeError") for e in refused.values()), refused
    assert status.startswith(f"{len(vectors['cases'])} of {len(vectors['cases'])} cases")
