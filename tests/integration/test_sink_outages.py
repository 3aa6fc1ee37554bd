"""Outages of the remote sinks under load, with private servers the tests kill and stop.

A real ``splitlab serve`` (two workers) writes to a private ``nats-server -js`` or a private
PostgreSQL cluster (:mod:`tests.integration.private_servers`; never the machine's shared
services) while client threads post batches with unique ``meta.id`` values. The sink is killed
(SIGKILL) and restarted, then stalled (SIGSTOP, like a network partition) and resumed. Checked:
every request is answered, each within a bound below the outage (the deadline is 0.25 s; the
bound leaves room for the spool's fsync and CPU contention on a loaded 2-core machine), no
acknowledged event is lost or stored twice once the spool has drained, and memory stays bounded
(sampled, printed).
Also: splitlab starts while its sink is down, and a SIGKILL of splitlab while events wait in the
spool and again while they are being replayed loses nothing and duplicates nothing.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.integration.outage_helpers import (
    Load,
    Watch,
    serve_env,
    spool_depth,
    stored_ids,
    wait_until_drained,
)
from tests.integration.private_servers import PrivateNats, PrivatePostgres, PrivateServer
from tests.integration.serve_helpers import free_port, server
from tests.unit.intake.conftest import web_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DEADLINE = 0.25
ANSWER_BOUND = 4.0  # seconds: outages last 5 s; before the fix requests waited all of them
OUTAGE = 5.0


@pytest.fixture(scope="module")
def postgres_cluster() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    yield cluster
    cluster.remove()


@pytest.fixture(params=["jetstream", "postgresql"])
def sink_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[
        tuple[str, PrivateServer, str]]:
    """(sink name, a private server, not started, and its URL)."""
    if request.param == "jetstream":
        nats = PrivateNats(tmp_path / "nats")
        yield "jetstream", nats, nats.url
        nats.stop()
    else:
        cluster: PrivatePostgres = request.getfixturevalue("postgres_cluster")
        cluster.fresh_database(f"t_{uuid.uuid4().hex[:12]}")
        yield "postgresql", cluster, cluster.url
        cluster.stop()


def check_every_ack_stored_once(sink: str, url: str, acked: list[str]) -> None:
    counts = Counter(stored_ids(sink, url))
    missing = [i for i in acked if i not in counts]
    assert missing == [], f"{len(missing)} acknowledged events were lost"
    duplicated = [i for i, n in counts.items() if n > 1]
    assert duplicated == [], f"{len(duplicated)} events were stored more than once"
    assert len(set(acked)) == len(acked)


def test_sink_killed_and_stalled_under_load(sink_server: tuple[str, PrivateServer, str],
                                            tmp_path: Path) -> None:
    sink, remote, url = sink_server
    remote.start()
    data, port = tmp_path / "data", free_port()
    env = serve_env(sink, url, DEADLINE)
    with (server(data, port, env=env, log=tmp_path / "serve.log") as process,
          Watch(process.pid, data, sink) as watch, Load([port]) as load):
        time.sleep(1.5)
        remote.send(signal.SIGKILL)
        time.sleep(OUTAGE)
        remote.start()
        time.sleep(1.5)
        remote.send(signal.SIGSTOP)
        time.sleep(OUTAGE)
        remote.send(signal.SIGCONT)
        time.sleep(1.5)
        load.stop()
        drained = wait_until_drained(data, sink)
    rss = [r for r, _ in watch.samples]
    times = sorted(seconds for seconds, _ in load.answers)
    print(f"{sink}: {len(load.answers)} requests {load.statuses()}, p50 "
          f"{times[len(times) // 2] * 1000:.0f} ms, p99 {times[len(times) * 99 // 100]:.2f} s, "
          f"slowest {load.slowest():.2f} s, acknowledged {len(load.acked)} events, spool peak "
          f"{max(d for _, d in watch.samples)}, drained in {drained:.1f} s after the load, RSS "
          f"{min(rss) / 2**20:.0f}-{max(rss) / 2**20:.0f} MB")
    assert load.statuses().keys() == {201}, load.statuses()
    assert load.slowest() < ANSWER_BOUND
    assert max(d for _, d in watch.samples) > 0, "the outage reached the spool"
    assert max(rss) - rss[0] < 200 * 2**20, "memory stayed bounded"
    check_every_ack_stored_once(sink, url, load.acked)


def post(port: int, n: int) -> list[str]:
    """``n`` single-batch posts of 10 events; the ids of those answered 201."""
    acked: list[str] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for _ in range(n):
            batch = [web_event() for _ in range(10)]
            for event in batch:
                event["meta"]["id"] = os.urandom(16).hex()
            if client.post("/v1/events", content=orjson.dumps(batch)).status_code == 201:
                acked.extend(e["meta"]["id"] for e in batch)
    return acked


def test_start_with_the_sink_down_then_replay(sink_server: tuple[str, PrivateServer, str],
                                              tmp_path: Path) -> None:
    sink, remote, url = sink_server
    data, port = tmp_path / "data", free_port()
    with server(data, port, env=serve_env(sink, url, DEADLINE), log=tmp_path / "serve.log"):
        acked = post(port, 20)
        assert len(acked) == 200 and spool_depth(data, sink) == 200
        if sink == "postgresql":  # the registry shares the database: 503 until it is up
            answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/experiments")
            assert answer.status_code == 503 and answer.headers["Retry-After"]
        remote.start()
        wait_until_drained(data, sink)
        acked += post(port, 5)
        wait_until_drained(data, sink)
        if sink == "postgresql":
            deadline = time.monotonic() + 30
            while httpx.get(f"http://127.0.0.1:{port}/api/v1/experiments").status_code != 200:
                assert time.monotonic() < deadline, "the registry opened once PostgreSQL was up"
                time.sleep(0.5)
    check_every_ack_stored_once(sink, url, acked)


def test_splitlab_killed_while_spooled_and_while_replaying(
        sink_server: tuple[str, PrivateServer, str], tmp_path: Path) -> None:
    sink, remote, url = sink_server
    data, port = tmp_path / "data", free_port()
    env = serve_env(sink, url, DEADLINE)
    with server(data, port, env=env) as process, Load([port], batch=50) as load:
        while spool_depth(data, sink) < 8000:  # the sink is down: everything is spooled
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)  # killed while events wait in the spool
        load.stop()
    spooled = spool_depth(data, sink)
    assert spooled >= len(load.acked) > 0
    remote.start()
    with server(data, port, env=env) as process:
        while spool_depth(data, sink) > spooled - 2000:  # replay under way
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)  # killed while replaying
    assert spool_depth(data, sink) > 0, "killed before the replay had finished"
    with server(data, port, env=env):
        wait_until_drained(data, sink)
    check_every_ack_stored_once(sink, url, load.acked)
