"""The registry API end to end: in process and as a real `splitlab serve`, on SQLite and
PostgreSQL (the same scenario each time)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from splitlab.registry.schema import Tables, drop_all, engine_for
from splitlab.sdk import HttpConfigSource
from splitlab.service.app import create_app
from splitlab.service.registry_api import RegistryComponent, RegistryExperiments
from splitlab.service.settings import Settings

from .registry_scenario import run_scenario, running_row
from .serve_helpers import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str | None, str]]:
    """(database URL or None for SQLite, table prefix); PostgreSQL tables dropped afterwards."""
    if request.param == "sqlite":
        yield None, ""
        return
    url = request.getfixturevalue("postgres_url")
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    yield url, prefix
    engine = engine_for(url, tmp_path)
    drop_all(engine, Tables.build(prefix))
    engine.dispose()


def test_in_process(database: tuple[str | None, str], tmp_path: Path) -> None:
    url, prefix = database
    settings = Settings(data_dir=tmp_path / "data", database_url=url, admin_token="s3cret-token",
                        table_prefix=prefix)
    with TestClient(create_app(settings)) as client:
        run_scenario(client, "s3cret-token")
        assert client.get("/openapi.json").json()["openapi"].startswith("3.")
        assert b"/api/v1/experiments/{name}/history" in client.get("/docs").content


def test_generated_token_is_private_and_stable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        token_file = tmp_path / "admin-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32
        row = {"name": "token-check-exp", "groups": ["a"], "sample_rate": 1,
               "user_identifier_type": "session"}
        headers = {"Authorization": f"Bearer {token}"}
        assert client.post("/api/v1/experiments", json=row, headers=headers).status_code == 201
    with TestClient(create_app(settings)) as client:  # restart: same token, same data
        assert (tmp_path / "admin-token").read_text().strip() == token
        assert client.get("/api/v1/experiments/token-check-exp").status_code == 200


def read_your_writes_across_workers(client: httpx.Client, base: str) -> None:
    """Right after each write, reads on fresh connections (spread over the workers by the
    kernel) all see it: the other worker's cached document was invalidated at once."""
    for i in range(5):
        name = f"cross-worker-exp-{i}"
        response = client.post("/api/v1/experiments", json=running_row(name),
                               headers={"Authorization": "Bearer subprocess-token"})
        assert response.status_code == 201
        for _ in range(6):
            names = [r["name"] for r in httpx.get(base + "/api/v1/experiments").json()]
            assert name in names


@pytest.mark.slow
def test_real_server(database: tuple[str | None, str], tmp_path: Path) -> None:
    url, prefix = database
    port = free_port()
    env = {**os.environ, "SPLITLAB_ADMIN_TOKEN": "subprocess-token",
           "SPLITLAB_TABLE_PREFIX": prefix}
    env.pop("SPLITLAB_DATABASE_URL", None)
    if url:
        env["SPLITLAB_DATABASE_URL"] = url
    command = [sys.executable, "-m", "splitlab.cli", "serve", "--port", str(port),
               "--data-dir", str(tmp_path / "data"), "--workers", "2"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "server did not start in 30 s"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=10) as client:
            run_scenario(client, "subprocess-token", one_process=False)
            # the SDK's HTTP source reads what the scenario left plus one running experiment
            created = client.post("/api/v1/experiments", json=running_row("sdk-source-exp"),
                                  headers={"Authorization": "Bearer subprocess-token"})
            assert created.status_code == 201
            source = HttpConfigSource(base + "/api/v1/experiments", max_age=0)
            snapshot = source.load()
            assert [e.name for e in snapshot.experiments] == ["sdk-source-exp"]
            assert snapshot.version.startswith('"') and snapshot.error is None
            again = source.load()  # revalidated with If-None-Match
            assert again.experiments == snapshot.experiments and again.error is None
            read_your_writes_across_workers(client, base)
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0].decode()
    assert server.returncode == 0, output
    assert f"http://127.0.0.1:{port}" in output
    assert "admin token the value of SPLITLAB_ADMIN_TOKEN" in output


def test_demo_seed_once_and_documented_paths_answer(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, admin_token="t0ken-for-demo", demo=True)
    for _ in range(2):  # a restart seeds nothing twice
        with TestClient(create_app(settings)) as client:
            analytics = client.get("/api/v1/experiments", params={"format": "analytics"}).json()
            assert sorted(r["status"] for r in analytics) == ["running", "running", "scheduled"]
            assert len(client.get("/api/v1/experiments").json()) == 2
            assert len(client.get("/api/v1/instruments").json()) == 1
    names = {"experiments": "sticky-header-2026", "instruments": "link-click-instrument",
             "layers": "reading-surfaces", "holdouts": "global-holdout-2026"}
    with TestClient(create_app(settings)) as client:
        layer = client.get("/api/v1/layers/reading-surfaces").json()
        assert layer["occupancy"]["free"] == [[50000, 100000]]
        assert client.get("/api/v1/experiments/reading-list-onboarding").json()["row"][
            "holdouts"] == [{"name": "global-holdout-2026", "percent": 2}]
        document = client.get("/openapi.json").json()
        for path, operations in document["paths"].items():
            plural = next((p for p in names if f"/{p}" in path), "experiments")
            concrete = path.replace("{name}", names[plural])
            for method, operation in operations.items():
                response = client.request(method.upper(), concrete, json={})
                assert str(response.status_code) in operation["responses"], (method, path,
                                                                             response.text)


def test_registry_experiments_see_each_write_at_once(tmp_path: Path) -> None:
    """OFREP and client payloads read the registry through RegistryExperiments: a write is
    visible to the next evaluation, without waiting for the poll interval."""
    settings = Settings(data_dir=tmp_path, admin_token="t0ken-for-source")
    with TestClient(create_app(settings)) as client:
        [component] = [c for c in client.app.state.components  # type: ignore[attr-defined]
                       if isinstance(c, RegistryComponent)]
        source = RegistryExperiments(component, poll_seconds=3600)
        assert list(source.experiments()) == []
        for i in range(3):
            response = client.post("/api/v1/experiments", json=running_row(f"source-exp-{i}"),
                                   headers={"Authorization": "Bearer t0ken-for-source"})
            assert response.status_code == 201
            assert [e.name for e in source.experiments()][-1] == f"source-exp-{i}"
        # no start: live at once, in the config API and for OFREP alike (no bound is no bound)
        open_start = {**running_row("open-start-exp"), "start": None}
        headers = {"Authorization": "Bearer t0ken-for-source"}
        assert client.post("/api/v1/experiments", json=open_start,
                           headers=headers).status_code == 201
        assert "open-start-exp" in [e.name for e in source.experiments()]
        served = [r["name"] for r in client.get("/api/v1/experiments").json()]
        assert served == ["open-start-exp", "source-exp-0", "source-exp-1", "source-exp-2"]
        etag = client.get("/api/v1/experiments/open-start-exp").headers["etag"]
        refused = client.patch("/api/v1/experiments/open-start-exp", json={"groups": ["x", "y"]},
                               headers={**headers, "If-Match": etag})
        assert refused.status_code == 409  # live, hence locked
