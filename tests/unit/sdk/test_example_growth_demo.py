"""The growth demo in ``examples/`` end to end, on a real Redis with RQ's worker in-process and a
stand-in for the splitlab server (config API and intake): sign-up enrollment, the job 48 hours
later, the API, the maintenance script, and an ``mpo`` override that sends nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from splitlab.core.model import format_time

from .sdk_helpers import IntakeStub, row

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
rq = pytest.importorskip("rq")
redis = pytest.importorskip("redis")
pytest.importorskip("starlette")
from rq.job import Job  # noqa: E402
from rq.registry import ScheduledJobRegistry  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

LEVELING_UP = "growth-leveling-up-notice"


@pytest.fixture
def queue(redis_url: str) -> Iterator[Any]:
    connection = redis.Redis.from_url(redis_url)
    queue = rq.Queue(f"growth-demo-test-{uuid.uuid4().hex[:8]}", connection=connection)
    yield queue
    registry = ScheduledJobRegistry(queue=queue)
    for job_id in registry.get_job_ids():
        registry.remove(job_id, delete_job=True)
    queue.delete(delete_jobs=True)
    for key in connection.scan_iter(f"*{queue.name}*"):  # registries and the id counter
        connection.delete(key)


def events(intake: IntakeStub, action: str) -> list[dict[str, Any]]:
    return [e for e in intake.events if e["action"] == action]


def test_growth_demo(intake: IntakeStub, queue: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    intake.rows = [row("growth-welcome-banner", "edge-unique", start=None, end=None),
                   row(LEVELING_UP, "mw-user", start=None, end=None)]
    monkeypatch.setenv("SPLITLAB_URL", intake.base_url)
    monkeypatch.delenv("SPLITLAB_EXAMPLE_NOW", raising=False)
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    from growth_demo.app import create_app
    from growth_demo.wiring import make_client

    client = make_client()
    web = TestClient(create_app(client, queue))
    assert 'id="splitlab-config"' in web.get("/").text
    signed_up = web.post("/signup", json={"username": "ada"}).json()
    user_id, group = signed_up["user_id"], signed_up["group"]
    assert group in {"control", "treatment"}
    other = "treatment" if group == "control" else "control"
    forced = web.post(f"/signup?mpo={LEVELING_UP}:{other}", json={"username": "qa"}).json()
    assert forced["group"] == other
    api = web.get(f"/api/leveling-up/{user_id}")
    assert api.json()["group"] == group
    assert client.flush(10.0)

    (enrollment,) = [e for e in events(intake, "experiment_enrollment")
                     if e["action_source"] == "account_creation"]  # none for the override
    assert enrollment["experiment"]["assigned"] == group
    assert enrollment["performer"]["id"] == user_id
    assert events(intake, "experiment_enrollment")[0]["action_source"] == "page_view"
    scraped = web.get("/metrics").text
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
    (notice,) = events(intake, "notification_sent")
    assert notice["experiment"]["assigned"] == group
    assert notice["dt"].startswith(format_time(due)[:16])

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "examples")])}
    script = subprocess.run(
        [sys.executable, "-m", "growth_demo.maintenance", "--users", "50", "--notify", "2"],
        env=env, capture_output=True, text=True, timeout=120)
    assert script.returncode == 0, script.stderr
    checked = events(intake, "maintenance_checked")
    assert len(checked) == 2
    assert all(e["experiment"]["assigned"] == "treatment" for e in checked)
    for event in checked:
        uid = event["performer"]["id"]
        assert web.get(f"/api/leveling-up/{uid}").json()["group"] == "treatment"
    client.close()
