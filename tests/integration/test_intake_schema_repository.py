"""A real ``splitlab serve`` (two workers) with a schema repository in a temporary directory:
a version added while it runs validates on first use, and ``$schema`` values that would leave
the directory are 400 and load nothing (the permissive schema outside would accept the event)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import orjson

from splitlab.intake.shards import shard_paths
from tests.integration.serve_helpers import free_port, server
from tests.unit.intake.test_schema_files import (
    TITLE,
    TRAVERSALS,
    as_yaml,
    button_schema,
    outside_setup,
)


def event(schema: str, **extra: object) -> dict[str, object]:
    return {"$schema": schema, "meta": {"stream": "acme.button"}, **extra}


def test_new_versions_without_restart_and_no_way_out(tmp_path: Path) -> None:
    root, outside = outside_setup(tmp_path / "schemas")
    streams = tmp_path / "streams.yaml"
    streams.write_text("streams:\n  splitlab.error.validation: {schema_title: error}\n"
                       f"  acme.button: {{schema_title: {TITLE}}}\n")
    env = {"SPLITLAB_SCHEMA_REPOSITORY": str(root), "SPLITLAB_STREAMS_FILE": str(streams)}
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/events"
    with server(tmp_path / "data", port, workers=2, env=env):
        assert httpx.post(url, json=[event(f"/{TITLE}/1.0.0", clicked=True)]).status_code == 201
        newer = event(f"/{TITLE}/1.1.0", colour="red")
        refused = httpx.post(url, json=[newer])
        assert refused.status_code == 400
        assert "schema not found" in refused.json()["invalid"][0]["context"]["message"]
        (root / "jsonschema" / TITLE / "1.1.0.yaml").write_text(
            as_yaml(button_schema("1.1.0", {"colour": {"type": "string"}})))
        for _ in range(6):  # new connections: both workers see the new version
            with httpx.Client() as client:
                assert client.post(url, json=[newer]).status_code == 201
        wrong = httpx.post(url, json=[event(f"/{TITLE}/1.1.0", colour=7)])
        assert wrong.status_code == 400
        for uri in TRAVERSALS:
            uri = uri.replace("/outside", str(outside)) if uri.startswith("file:") else uri
            answer = httpx.post(url, content=orjson.dumps([event(uri, anything="goes")]))
            assert answer.status_code == 400, uri
            [invalid] = answer.json()["invalid"]
            assert invalid["context"]["errors"][0]["keyword"] == "schema", uri
        mixed = httpx.post(url, json=[event(f"/{TITLE}/1.0.0"), event(f"/{TITLE}/6.6.6")])
        assert mixed.status_code == 207
        assert "leads out" in mixed.json()["invalid"][0]["context"]["message"]
    rows = []
    for path in shard_paths(tmp_path / "data" / "events.sqlite").values():  # a shard per worker
        with sqlite3.connect(path) as db:
            rows += db.execute("SELECT stream, body FROM events").fetchall()
    valid = [orjson.loads(body) for stream, body in rows if stream == "acme.button"]
    assert sorted(e["$schema"] for e in valid) == [f"/{TITLE}/1.0.0"] * 2 + [f"/{TITLE}/1.1.0"] * 6
    errors = [orjson.loads(body) for stream, body in rows if stream != "acme.button"]
    assert len(errors) == 2 + len(TRAVERSALS) + 1
