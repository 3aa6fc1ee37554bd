"""The separate results worker at scale: ``splitlab results run`` beside a ``splitlab serve`` whose
events go to NATS JetStream (read by the worker's durable consumer) or to PostgreSQL (read as a
log, registry in PostgreSQL too). The worker is SIGKILLed mid-run several times and restarted;
afterwards the results count exactly the units that were sent, and the lake holds every event
once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.integration.results_scenario import ROW, post_all, traffic, wait_for_results
from tests.integration.serve_helpers import (
    create_experiment,
    free_port,
    server,
    server_environment,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "results-worker-token"


@pytest.fixture(params=["jetstream", "postgresql"])
def sink_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The settings that send events to the sink, and clean it up after."""
    suffix = uuid.uuid4().hex[:8]
    if request.param == "jetstream":
        url = request.getfixturevalue("nats_url")
        stream = f"RESULTS_WORKER_{suffix.upper()}"
        yield {"SPLITLAB_EVENTS_SINK": "jetstream", "SPLITLAB_NATS_URL": url,
               "SPLITLAB_NATS_STREAM": stream}
        asyncio.run(_delete_stream(url, stream))
        return
    database = request.getfixturevalue("postgres_url")
    prefix = f"rw{suffix}_"
    yield {"SPLITLAB_EVENTS_SINK": "postgresql", "SPLITLAB_DATABASE_URL": database,
           "SPLITLAB_TABLE_PREFIX": prefix}
    _drop_tables(database, prefix)


async def _delete_stream(url: str, stream: str) -> None:
    import nats

    client = await nats.connect(url)
    try:
        await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


def _drop_tables(url: str, prefix: str) -> None:
    from splitlab.registry.schema import Tables, drop_all, engine_for

    engine = engine_for(url, Path("."))
    drop_all(engine, Tables.build(prefix))
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{prefix}events"')
    engine.dispose()


def worker(data: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from splitlab.cli import main; main()", "results", "run",
               "--interval", "1", "--lease", "3", "--data-dir", str(data)]
    return subprocess.Popen(command, env=server_environment(env), stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def test_a_killed_worker_loses_and_duplicates_nothing(tmp_path: Path,
                                                      sink_env: dict[str, str]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    env = {"SPLITLAB_ADMIN_TOKEN": TOKEN, **sink_env}
    plan = traffic(seed=2, units=4000)
    with server(data, port, workers=1, env=env, log=tmp_path / "serve.log",
                args=["--results-interval", "0"]):
        create_experiment(url, TOKEN, ROW)
        post_all(url, plan.events[: len(plan.events) // 2])
        kills = 0
        for delay in (1.5, 2.5, 3.5):
            child = worker(data, env, tmp_path / "worker.log")
            time.sleep(delay)
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                kills += 1
            child.wait()
            if kills == 1:
                post_all(url, plan.events[len(plan.events) // 2:])
        assert kills == 3
        final = worker(data, env, tmp_path / "worker.log")
        try:
            latest = wait_for_results(url, plan.expected, timeout=180)
        finally:
            os.killpg(final.pid, signal.SIGTERM)
            final.wait(30)
    assert latest["units_in_multiple_groups"] == plan.mixed
    pattern = str(data / "lake" / "**" / "*.parquet")
    ids = duckdb.sql(f"SELECT event_id FROM read_parquet('{pattern}')").fetchall()
    sent = {e["meta"]["id"] for e in plan.events}
    assert len(ids) == len({i for (i,) in ids}) == len(sent)
