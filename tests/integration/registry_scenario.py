"""The registry API scenario, driven over HTTP against any running app (in process or not).

create → read back in every format → conditional GET 304 → refused edits (409, 412, 401, 4xx
for bad input, each leaving the stored data unchanged) → history.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from splitlab.core.assignment import assign
from splitlab.core.model import Experiment


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def running_row(name: str = "scenario-running-exp") -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "name": name,
        "groups": ["control", "treatment"],
        "sample_rate": {"default": 0.25, "1": ["enwiki"]},
        "user_identifier_type": "mw-user",
        "start": iso(now - timedelta(days=1)),
        "end": iso(now + timedelta(days=30)),
        "stream_name": "product_metrics.web_base",
        "schema_id": "/analytics/product_metrics/web/base/2.1.0",
        "contextual_attributes": ["page_namespace"],
    }


def scheduled_row() -> dict[str, Any]:
    row = running_row("scenario-scheduled-exp")
    row["start"] = iso(datetime.now(UTC) + timedelta(days=5))
    return row


def stored_state(client: httpx.Client) -> Any:
    """Everything a reader can see, to assert a refused write changed nothing."""
    analytics = client.get("/api/v1/experiments", params={"format": "analytics"}).json()
    histories = {row["name"]: client.get(f"/api/v1/experiments/{row['name']}/history").json()
                 for row in analytics}
    return analytics, histories


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Splitlab-Actor": "scenario"}


def run_scenario(client: httpx.Client, token: str, *, one_process: bool = True) -> None:
    """The whole scenario; raises AssertionError on the first deviation. With several worker
    processes (``one_process`` false) a scrape of /metrics sees one worker's counts only."""
    row = running_row()
    created = client.post("/api/v1/experiments", json=row, headers=auth(token))
    assert created.status_code == 201, created.text
    etag = created.headers["etag"]
    assert created.json()["row"]["version"] == 1
    assert client.post("/api/v1/experiments", json=scheduled_row(),
                       headers=auth(token)).status_code == 201

    # config (mediawiki): only the running one; the exposure_version is the DESIGN.md digest
    response = client.get("/api/v1/experiments")
    assert response.status_code == 200
    assert "public" in response.headers["cache-control"]
    rows = response.json()
    assert [r["name"] for r in rows] == [row["name"]]
    material = {"name": row["name"], "user_identifier_type": "mw-user",
                "groups": ["control", "treatment"],
                "sample_rate": {"default": 0.25, "1": ["enwiki"]},
                "stream_name": row["stream_name"], "schema_id": row["schema_id"],
                "contextual_attributes": ["page_namespace"]}
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    assert rows[0]["exposure_version"] == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    experiment = Experiment.from_config(rows[0])
    assert assign(2, experiment, "enwiki").in_sample  # rate 1 on enwiki

    # varnish: the edge config holds edge-unique experiments only (test_edge_config.py has more)
    edge = client.get("/api/v1/experiments", params={"authority": "varnish"})
    assert edge.headers["content-type"] == "application/json; charset=utf-8"
    assert list(edge.json()) == ["_comment"]

    # analytics: both, with status and phases
    analytics = {r["name"]: r for r in
                 client.get("/api/v1/experiments", params={"format": "analytics"}).json()}
    assert analytics[row["name"]]["status"] == "running"
    assert analytics["scenario-scheduled-exp"]["status"] == "scheduled"
    assert analytics[row["name"]]["phases"][0]["groups"] == ["control", "treatment"]

    # conditional GET, identity and gzip
    plain = client.get("/api/v1/experiments", headers={"Accept-Encoding": "identity"})
    again = client.get("/api/v1/experiments",
                       headers={"If-None-Match": plain.headers["etag"],
                                "Accept-Encoding": "identity"})
    assert again.status_code == 304 and again.content == b""
    zipped = client.get("/api/v1/experiments", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers.get("content-encoding") == "gzip"
    assert zipped.json() == plain.json()
    assert client.get("/api/v1/experiments", headers={
        "If-None-Match": zipped.headers["etag"], "Accept-Encoding": "gzip"}).status_code == 304

    # refused edits: each leaves everything as it was
    before = stored_state(client)
    path = f"/api/v1/experiments/{row['name']}"
    refusals: list[tuple[httpx.Response, int, str]] = [
        (client.patch(path, json={"groups": ["a", "b"]},
                      headers={**auth(token), "If-Match": etag}), 409, "phase_index 1"),
        (client.patch(path, json={"sample_rate": {"default": 0.5}},
                      headers={**auth(token), "If-Match": '"1-stale"'}), 412, "changed since"),
        (client.patch(path, json={"sample_rate": {"default": 0.5}}, headers=auth(token)),
         428, "If-Match"),
        (client.patch(path, json={"sample_rate": {"default": 0.5}},
                      headers={"If-Match": etag}), 401, "Bearer"),
        (client.patch(path, json={"sample_rate": {"default": 0.5}},
                      headers={**auth("wrong-token"), "If-Match": etag}), 401, "wrong"),
        (client.post("/api/v1/experiments", json=running_row("nobody-may-write")), 401, "Bearer"),
        (client.post(f"{path}/end"), 401, "Bearer"),
        (client.post("/api/v1/experiments", content=b'{"name": ', headers=auth(token)),
         400, "malformed JSON"),
        (client.post("/api/v1/experiments", json={**running_row("wrong-types-exp"),
                                                  "groups": "control"}, headers=auth(token)),
         422, "groups"),
        (client.post("/api/v1/experiments", json={**running_row("unknown-field-exp"),
                                                  "colour": "red"}, headers=auth(token)),
         422, "colour"),
        (client.post("/api/v1/experiments", json=running_row("bad name!"), headers=auth(token)),
         422, "invalid name"),
        (client.post("/api/v1/experiments", json=running_row(), headers=auth(token)),
         409, "already exists"),
        (client.post("/api/v1/experiments", content=b"[" + b"1," * 40000 + b"1]",
                     headers=auth(token)), 413, "limit"),
        (client.get("/api/v1/experiments", params={"format": "csv"}), 400, "format"),
        (client.get("/api/v1/experiments/no-such-experiment"), 404, "no experiment"),
    ]
    for response, status, words in refusals:
        assert response.status_code == status, (status, response.status_code, response.text)
        assert words in response.json()["message"], response.text
    assert stored_state(client) == before

    # allowed edits: a new phase, then end; history records each with its actor
    phase = client.patch(path, json={"groups": ["control", "b"], "phase_index": 1},
                         headers={**auth(token), "If-Match": etag})
    assert phase.status_code == 200, phase.text
    assert client.get(path).headers["etag"] == phase.headers["etag"]
    ended = client.post(f"{path}/end", headers=auth(token))
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    assert client.get("/api/v1/experiments").json() == []
    history = client.get(f"{path}/history").json()["history"]
    assert [(h["revision"], h["action"], h["actor"]) for h in history] == [
        (1, "create", "scenario"), (2, "update", "scenario"), (3, "end", "scenario")]
    assert history[1]["changes"]["groups"] == [["control", "treatment"], ["control", "b"]]
    phases = {r["name"]: r for r in client.get(
        "/api/v1/experiments", params={"format": "analytics"}).json()}[row["name"]]["phases"]
    assert [p["phase_index"] for p in phases] == [0, 1]

    # instruments
    instrument = {"name": "scenario-instrument", "sample_rate": {"default": 1},
                  "start": iso(datetime.now(UTC) - timedelta(hours=1))}
    assert client.post("/api/v1/instruments", json=instrument,
                       headers=auth(token)).status_code == 201
    assert [i["name"] for i in client.get("/api/v1/instruments").json()] == [instrument["name"]]

    # metrics count what happened, by route template
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    patch_409 = [s.value for s in families["splitlab_http_requests"].samples
                 if s.name.endswith("_total") and s.labels == {
                     "route": "/api/v1/experiments/{name}", "method": "PATCH", "status": "409"}]
    assert sum(patch_409) >= 1 or not one_process
    assert families["splitlab_config_version"].samples[0].value > 0
