"""The edge config as Wikimedia's CDN fetcher takes it, from a real ``splitlab serve``.

The fetcher (``wmfuniq_experiment_fetcher.py`` in operations/puppet) installs a body only when the
status is 200, ``Content-Type`` is exactly ``application/json; charset=utf-8`` and the JSON
validates against the wmfuniq abtests schema (draft-04); the same three checks are applied here,
with a real JSON Schema validator and the published schema read in place.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator

from .serve_helpers import free_port, server, server_environment

pytestmark = pytest.mark.integration

TOKEN = "edge-config-token"
URL = "/api/v1/experiments?authority=varnish&format=config"
CATALOG = "# the sites of this test\nenwiki\ndewiki\nfrwiktionary\ncommonswiki\n"


def at(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def row(name: str, unit: str, rate: object, start: float, end: float,
        groups: tuple[str, ...] = ("control", "treatment")) -> dict[str, Any]:
    return {"name": name, "groups": list(groups), "sample_rate": rate,
            "user_identifier_type": unit, "start": at(start), "end": at(end)}


ROWS = [
    row("edge-running-sites", "edge-unique",
        {"default": 0.1, "0.5": ["enwiki"], "0": ["dewiki"]}, -1.5, 30),
    row("edge-running-three", "edge-unique", {"default": 0, "1": ["frwiktionary"]}, -1, 30,
        ("a", "b", "c")),
    row("logged-in-running", "mw-user", {"default": 1}, -1, 30),
    row("session-running-exp", "session", {"default": 1}, -1, 30),
    row("edge-starts-later", "edge-unique", {"default": 1}, 2, 30),
    row("edge-already-ended", "edge-unique", {"default": 1}, -10, -1),
]


def fetch(client: httpx.Client, **headers: str) -> httpx.Response:
    """The fetcher's request and its three checks."""
    response = client.get(URL, headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    return response


def test_the_edge_fetcher_installs_what_serve_publishes(tmp_path: Path, refdata: Path) -> None:
    schema = json.loads((refdata / "wikimedia-varnish-abtests-schema.json").read_text())
    Draft4Validator.check_schema(schema)
    catalog = tmp_path / "sites.dblist"
    catalog.write_text(CATALOG)
    port = free_port()
    env = {"SPLITLAB_ADMIN_TOKEN": TOKEN, "SPLITLAB_SITE_CATALOG": str(catalog)}
    with server(tmp_path / "data", port, workers=1, env=env, log=tmp_path / "serve.log"), \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for each in ROWS:
            created = client.post("/api/v1/experiments", json=each, headers=auth)
            assert created.status_code == 201, created.text
        unknown = client.post("/api/v1/experiments", headers=auth, json=row(
            "edge-unknown-site", "edge-unique", {"default": 0.1, "1": ["frwiki"]}, -1, 30))
        assert unknown.status_code == 422
        assert unknown.json()["field"] == "sample_rate" and "'frwiki'" in unknown.json()["message"]

        plain = fetch(client, **{"Accept-Encoding": "identity"})
        zipped = fetch(client, **{"Accept-Encoding": "gzip"})
        assert zipped.headers["Content-Encoding"] == "gzip"
        document = plain.json()
        assert zipped.json() == document
        Draft4Validator(schema).validate(document)

        assert sorted(document) == ["_comment", "edge-running-sites", "edge-running-three"]
        sites = document["edge-running-sites"]
        start = datetime.fromisoformat(ROWS[0]["start"])
        up = start.replace(microsecond=0) + timedelta(seconds=1 if start.microsecond else 0)
        # whole seconds inside the window: the start rounded up, the end down
        assert sites["start"] == f"{up:%Y-%m-%dT%H:%M:%S}Z"
        assert sites["end"] == ROWS[0]["end"][:19] + "Z"
        half, tenth = ([0, 24_999], [50_000, 74_999]), ([0, 4_999], [50_000, 54_999])
        assert sites["domains"] == {
            domain: {"groups": dict(zip(("control", "treatment"), pair, strict=True))}
            for domain, pair in (("commons.wikimedia.org", tenth), ("en.wikipedia.org", half),
                                 ("fr.wiktionary.org", tenth))}
        assert document["edge-running-three"]["domains"] == {"fr.wiktionary.org": {"groups": {
            "a": [0, 33_332], "b": [33_333, 66_665], "c": [66_666, 99_999]}}}

        for response in (plain, zipped):
            again = client.get(URL, headers={"If-None-Match": response.headers["ETag"],
                                             "Accept-Encoding": response.headers.get(
                                                 "Content-Encoding", "identity")})
            assert again.status_code == 304 and again.content == b""


def test_serve_refuses_a_bad_site_catalog(tmp_path: Path) -> None:
    catalog = tmp_path / "sites.json"
    catalog.write_text('{"shop": "Not A Domain"}')
    done = subprocess.run(
        [sys.executable, "-c", "from splitlab.cli import main; main()", "serve",
         "--data-dir", str(tmp_path / "data"), "--port", str(free_port()),
         "--site-catalog", str(catalog)],
        capture_output=True, text=True, timeout=60, env=server_environment(None))
    assert done.returncode == 2
    assert "not a domain name" in done.stderr
