"""Shared test helpers: real services and reference data, skipped with a reason when absent.

Under ``SPLITLAB_REQUIRE_SERVICES=1`` (set by CI) an absent service or reference folder fails the
test instead of skipping it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
# No per-example deadline: it is a timing assertion, and on a loaded 2-core CI machine an example
# that takes 200 ms says nothing about the code (performance is measured in benchmarks/).
settings.register_profile("splitlab", deadline=None)
settings.load_profile("splitlab")
REFDATA = Path(os.environ.get("SPLITLAB_REFDATA", ROOT.parent / "shared" / "refdata"))
VECTORS = ROOT / "tests" / "vectors"


def services_required() -> bool:
    return os.environ.get("SPLITLAB_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail when services are required."""
    if services_required():
        pytest.fail(f"required but unavailable: {reason}")
    pytest.skip(reason)


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port),
                                      timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def refdata() -> Path:
    """The shared reference data folder (other projects' published fixtures)."""
    if not REFDATA.is_dir():
        unavailable(f"reference data folder {REFDATA} is absent")
    return REFDATA


def service_url(variable: str, default: str, port: int, name: str) -> str:
    """The URL in ``variable`` (else ``default``), or skip/fail when nothing answers there."""
    url = os.environ.get(variable, default)
    if not reachable(url, port):
        unavailable(f"{name} is not reachable at {url} (set {variable})")
    return url


@pytest.fixture
def postgres_url() -> str:
    """A PostgreSQL URL from SPLITLAB_TEST_POSTGRES_URL (default: local trust-auth `test`)."""
    return service_url("SPLITLAB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test",
                       5432, "PostgreSQL")


@pytest.fixture
def nats_url() -> str:
    """A NATS (JetStream) URL from SPLITLAB_TEST_NATS_URL (default nats://127.0.0.1:4222)."""
    return service_url("SPLITLAB_TEST_NATS_URL", "nats://127.0.0.1:4222", 4222, "NATS")


@pytest.fixture
def js_stream(nats_url: str) -> Iterator[tuple[str, str]]:
    """A JetStream stream name and subject prefix of the test's own on the shared NATS server;
    the stream (if the test made one) is deleted after."""
    import asyncio
    import contextlib

    import nats

    suffix = uuid.uuid4().hex[:12]
    name, prefix = f"T_EVENTS_{suffix.upper()}", f"t.events.{suffix}"
    yield name, prefix

    async def drop() -> None:
        client = await nats.connect(nats_url)
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(name)
        await client.close()

    asyncio.run(drop())


@pytest.fixture
def redis_url() -> str:
    """A Redis URL from SPLITLAB_TEST_REDIS_URL (default redis://127.0.0.1:6379/0)."""
    return service_url("SPLITLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0", 6379, "Redis")


def rq_queue(redis_url: str, prefix: str) -> Iterator[Any]:
    """A fresh RQ queue on the real Redis; its jobs, registries and keys are removed after."""
    import redis
    import rq
    from rq.registry import ScheduledJobRegistry

    connection = redis.Redis.from_url(redis_url)
    queue = rq.Queue(f"{prefix}-{uuid.uuid4().hex[:8]}", connection=connection)
    yield queue
    registry = ScheduledJobRegistry(queue=queue)
    for job_id in registry.get_job_ids():
        registry.remove(job_id, delete_job=True)
    queue.delete(delete_jobs=True)
    for key in connection.scan_iter(f"*{queue.name}*"):  # registries and the id counter
        connection.delete(key)
