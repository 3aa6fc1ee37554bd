"""Scale-out: two ``splitlab serve`` instances on different ports share one JetStream stream
and one PostgreSQL (registry and event table) and take load at the same time.

Stream ``product_metrics.web_base`` goes to JetStream, ``product_metrics.experiment_enrollment``
to PostgreSQL. Client threads send to both instances in turn; every fifth batch is sent to both
(a retry that a load balancer routed to the other instance). Every acknowledged event must be
stored exactly once, in its stream's sink, whichever instance took it. The servers are private
(:mod:`tests.integration.private_servers`), like the outage tests'.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.integration.outage_helpers import spool_depth, stored_ids
from tests.integration.private_servers import PrivateNats, PrivatePostgres
from tests.integration.serve_helpers import free_port, server
from tests.unit.intake.conftest import web_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]
STREAMS = {"error_stream": "splitlab.error.validation", "streams": {
    "splitlab.error.validation": {"schema_title": "error"},
    "product_metrics.web_base": {"schema_title": "analytics/product_metrics/web/base"},
    "product_metrics.experiment_enrollment": {
        "schema_title": "analytics/product_metrics/web/base", "sink": "postgresql"}}}


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[PrivateNats, PrivatePostgres]]:
    nats, postgres = PrivateNats(tmp_path / "nats"), PrivatePostgres()
    nats.start()
    postgres.start()
    yield nats, postgres
    nats.stop()
    postgres.remove()


def send(ports: list[int], rounds: int, acked: list[str], offset: int) -> None:
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in ports]
    for turn in range(offset, offset + rounds):
        batch = [web_event("product_metrics.web_base" if i % 2 else
                           "product_metrics.experiment_enrollment") for i in range(10)]
        for event in batch:
            event["meta"]["id"] = str(uuid.uuid4())
        targets = clients if turn % 5 == 0 else [clients[turn % 2]]
        answers = [c.post("/v1/events", content=orjson.dumps(batch)).status_code
                   for c in targets]
        if 201 in answers:
            acked.extend(e["meta"]["id"] for e in batch)
    for client in clients:
        client.close()


def test_two_instances_share_one_stream_and_one_database(
        servers: tuple[PrivateNats, PrivatePostgres], tmp_path: Path) -> None:
    nats, postgres = servers
    streams = tmp_path / "streams.json"
    streams.write_bytes(orjson.dumps(STREAMS))
    env = {"SPLITLAB_EVENTS_SINK": "jetstream", "SPLITLAB_NATS_URL": nats.url,
           "SPLITLAB_DATABASE_URL": postgres.url, "SPLITLAB_STREAMS_FILE": str(streams),
           "SPLITLAB_ADMIN_TOKEN": "t" * 32}
    ports = [free_port(), free_port()]
    acked: list[str] = []
    with (server(tmp_path / "a", ports[0], workers=1, env=env),
          server(tmp_path / "b", ports[1], workers=1, env=env)):
        threads = [threading.Thread(target=send, args=(ports, 60, acked, i * 1000))
                   for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        for data in (tmp_path / "a", tmp_path / "b"):  # stored by the sinks, not spooled
            assert spool_depth(data, "jetstream") == spool_depth(data, "postgresql") == 0
    on_jetstream = Counter(stored_ids("jetstream", nats.url))
    in_postgres = Counter(stored_ids("postgresql", postgres.url))
    assert len(acked) == 4 * 60 * 10 == len(set(acked))
    assert [i for i in acked if on_jetstream[i] + in_postgres[i] != 1] == []
    assert sum(on_jetstream.values()) == sum(in_postgres.values()) == len(acked) // 2
