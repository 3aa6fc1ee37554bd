"""The SDK client against a real `splitlab serve` (the registry's config API over HTTP).

Groups are checked against DESIGN.md's tk-v1 formula written out here; the exposure version in
the SDK's events must equal the one the server publishes with the row; a new experiment
created through the admin API reaches a running client through ETag polling.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence

import httpx
import pytest

from splitlab.sdk import Client, HttpConfigSource, MemoryEventSender

from .registry_scenario import auth, running_row
from .test_registry_cli import TOKEN, server  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def formula(identifier: object, name: str, groups: Sequence[str], rate: float) -> str | None:
    digest = hashlib.sha256(f"{identifier}{name}".encode()).hexdigest()
    scaled = int(digest[:6], 16) / 2**24 * len(groups)
    return groups[math.floor(scaled)] if scaled - math.floor(scaled) < rate else None


def create(base: str, row: dict[str, object]) -> dict[str, object]:
    response = httpx.post(f"{base}/api/v1/experiments", json=row, headers=auth(TOKEN))
    assert response.status_code == 201, response.text
    published = {r["name"]: r for r in httpx.get(f"{base}/api/v1/experiments").json()}
    return published[str(row["name"])]


def test_sdk_reads_the_config_api(server: str) -> None:  # noqa: F811
    row = create(server, running_row("sdk-config-api-exp"))
    groups = ["control", "treatment"]
    source = HttpConfigSource(f"{server}/api/v1/experiments", max_age=0.1)
    sender = MemoryEventSender()
    on_enwiki = Client(source, sender, "enwiki")
    default_site = Client(source, MemoryEventSender())
    for uid in range(300):
        assert on_enwiki.get_assignment_for_user(uid, "sdk-config-api-exp") == \
            formula(uid, "sdk-config-api-exp", groups, 1.0)
        assert default_site.get_assignment_for_user(uid, "sdk-config-api-exp") == \
            formula(uid, "sdk-config-api-exp", groups, 0.25)

    manager = on_enwiki.manager(user_id=7)
    manager.get_experiment("sdk-config-api-exp").send_exposure()
    (event,) = sender.events
    assert event["experiment"]["exposure_version"] == row["exposure_version"]
    assert event["meta"]["stream"] == row["stream_name"]
    assert event["$schema"] == row["schema_id"]

    create(server, running_row("sdk-config-api-new"))
    deadline = time.monotonic() + 10
    while on_enwiki.get_assignment_for_user(1, "sdk-config-api-new") is None:
        assert time.monotonic() < deadline, "the new experiment never reached the client"
        time.sleep(0.05)
    assert on_enwiki.get_assignment_for_user(1, "sdk-config-api-new") == \
        formula(1, "sdk-config-api-new", groups, 1.0)
