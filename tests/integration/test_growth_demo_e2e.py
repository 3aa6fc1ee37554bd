"""The growth demo end to end with every real component: a ``splitlab serve`` subprocess (config
API, admin API, event intake on the embedded log), RQ on a real Redis, and the demo's web app,
job and maintenance script built by ``examples/growth_demo`` with ``SPLITLAB_URL`` pointing at the
server.

A user signs up; the ``account_creation`` enrollment arrives at the intake with the right group;
the job "48 hours later" (time injected) computes the same group and its event arrives tagged
with it; the API and the maintenance script agree; an ``mpo`` override changes the group and
sends nothing. Expected groups come from an independent tk-v1 oracle, and the server's own event
log (read back as ``splitlab events export`` does) is the witness: every event the SDK sent was
accepted, none went to the error stream.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import rq_queue
from splitlab.core.model import format_time
from splitlab.intake.export import iterate, open_reader
from splitlab.intake.streams import DEFAULT_ERROR_STREAM
from tests.integration.serve_helpers import create_experiment, free_port, server
from tests.unit.sdk.sdk_helpers import oracle

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
rq = pytest.importorskip("rq")
redis = pytest.importorskip("redis")
pytest.importorskip("starlette")
from rq.job import Job  # noqa: E402
from rq.registry import ScheduledJobRegistry  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

TOKEN = "growth-demo-e2e-token"
WELCOME_BANNER = "growth-welcome-banner"
LEVELING_UP = "growth-leveling-up-notice"
GROUPS = ["control", "treatment"]


@pytest.fixture
def splitlab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real server holding the demo's two experiments (created through the admin API);
    yields its URL and data directory."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    with server(data, port, workers=1, env={"SPLITLAB_ADMIN_TOKEN": TOKEN},
                log=tmp_path / "serve.log"):
        for name, unit in ((WELCOME_BANNER, "edge-unique"), (LEVELING_UP, "mw-user")):
            create_experiment(url, TOKEN, {"name": name, "groups": GROUPS,
                                           "sample_rate": {"default": 1.0},
                                           "user_identifier_type": unit})
        yield url, data


@pytest.fixture
def queue(redis_url: str) -> Iterator[Any]:
    yield from rq_queue(redis_url, "growth-demo-e2e")


def stored(data: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every event in the server's log as ``(stream, event)``, in storage order."""
    reader = open_reader(data, None)
    try:
        return [(e.stream, orjson.loads(e.body)) for e in iterate(reader, None, None)]
    finally:
        reader.close()


def accepted(data: Path, action: str) -> list[dict[str, Any]]:
    """The stored events with ``action``, after checking that nothing was refused."""
    log = stored(data)
    errors = [event for stream, event in log if stream == DEFAULT_ERROR_STREAM]
    assert errors == [], [e.get("message") for e in errors]
    return [event for _, event in log if event.get("action") == action]


def test_growth_demo_against_a_real_server(
    splitlab: tuple[str, Path], queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, data = splitlab
    monkeypatch.setenv("SPLITLAB_URL", url)
    monkeypatch.delenv("SPLITLAB_EXAMPLE_NOW", raising=False)
    monkeypatch.delenv("SPLITLAB_SITE", raising=False)
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    from growth_demo.app import create_app
    from growth_demo.wiring import make_client

    client = make_client()
    web = TestClient(create_app(client, queue))
    assert 'id="splitlab-config"' in web.get("/").text
    signed_up = web.post("/signup", json={"username": "ada"}).json()
    user_id, group = signed_up["user_id"], signed_up["group"]
    assert group == oracle(user_id, LEVELING_UP, GROUPS, 1.0)
    other = "treatment" if group == "control" else "control"
    forced = web.post(f"/signup?mpo={LEVELING_UP}:{other}", json={"username": "qa"}).json()
    assert forced["group"] == other
    assert web.get(f"/api/leveling-up/{user_id}").json()["group"] == group
    assert client.flush(10.0)

    enrollments = accepted(data, "experiment_enrollment")
    (signup,) = [e for e in enrollments if e["action_source"] == "account_creation"]
    assert (signup["experiment"]["enrolled"], signup["experiment"]["assigned"]) == (
        LEVELING_UP, group)
    assert signup["performer"]["id"] == user_id
    # the experiment's own stream: the registry gives every row one (Test Kitchen needs it)
    assert signup["meta"]["stream"] == "product_metrics.web_base"
    assert signup["meta"]["dt"] and signup["meta"]["id"]
    assert [e["action_source"] for e in enrollments] == ["page_view", "account_creation"]
    assert forced["user_id"] not in {e.get("performer", {}).get("id") for _, e in stored(data)}
    scraped = web.get("/metrics").text  # the demo app exposes the SDK's own counters
    assert (f'splitlab_sdk_enrollments_total{{experiment="{LEVELING_UP}",group="{group}",'
            'source="account_creation"} 1') in scraped

    registry = ScheduledJobRegistry(queue=queue)
    job_id = Job.fetch(signed_up["job_id"], connection=queue.connection).id
    due = registry.get_scheduled_time(job_id)
    scheduled_after = due - Job.fetch(job_id, connection=queue.connection).created_at
    assert abs(scheduled_after - timedelta(hours=48)) < timedelta(minutes=1)
    monkeypatch.setenv("SPLITLAB_EXAMPLE_NOW", format_time(due))
    registry.remove(job_id)
    job = queue.enqueue_job(Job.fetch(job_id, connection=queue.connection))
    rq.SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert job.return_value() == group
    (notice,) = accepted(data, "notification_sent")
    assert (notice["experiment"]["assigned"], notice["performer"]["id"]) == (group, user_id)
    assert notice["experiment"]["subject_id"] == signup["experiment"]["subject_id"]
    assert notice["dt"].startswith(format_time(due)[:16])

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "examples")])}
    script = subprocess.run(
        [sys.executable, "-m", "growth_demo.maintenance", "--users", "50", "--notify", "2"],
        env=env, capture_output=True, text=True, timeout=120)
    assert script.returncode == 0, script.stderr
    expected = {g: sum(oracle(uid, LEVELING_UP, GROUPS, 1.0) == g for uid in range(1, 51))
                for g in GROUPS}
    assert {line.split()[0]: int(line.split()[1]) for line in script.stdout.splitlines()} == (
        expected)
    checked = accepted(data, "maintenance_checked")
    assert len(checked) == 2
    for event in checked:
        uid = event["performer"]["id"]
        assert event["experiment"]["assigned"] == "treatment"
        assert oracle(uid, LEVELING_UP, GROUPS, 1.0) == "treatment"
        assert web.get(f"/api/leveling-up/{uid}").json()["group"] == "treatment"
    assert web.get(f"/api/leveling-up/{forced['user_id']}").json()["group"] == oracle(
        forced["user_id"], LEVELING_UP, GROUPS, 1.0)
    client.close()
    assert len(stored(data)) == 6  # page view enrollment + exposure, sign-up, job, 2 by script
