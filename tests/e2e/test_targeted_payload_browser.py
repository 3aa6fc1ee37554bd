"""End to end in headless Chromium: a signed client payload whose targeting condition reads an
attribute only the page knows (its viewport width), decided by the browser SDK.

A local HTTP server on ``localhost`` (a secure context, so WebCrypto's Ed25519 is there) serves a
page whose data block is a payload built by :func:`splitlab.sdk.client_payload.build_payload` with
the server's attributes (platform ``desktop``, ...) and signed by
:mod:`splitlab.sdk.signing`, the SDK's ES modules (``clients/js/src``), the public keys at the
SDK's default ``keysUrl``, and an intake that records what the page beacons. The page gives
``{viewport: innerWidth}`` to ``createClient``: a wide window is enrolled in the payload's group
(by the tk-v1 formula: a 50/50 ``sl-v2`` split is tk-v1 at rate 1) and sends one exposure; a
narrow one is not enrolled (reason ``targeting``) and sends nothing. The same with hashed names.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from sdk_site import SdkHandler, serving

from conftest import unavailable
from splitlab.core.model import Experiment
from splitlab.sdk.bootstrap import KEYS_PATH, render_bootstrap
from splitlab.sdk.client_payload import PayloadOptions, build_payload

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
NAME = "viewport-banner-exp"
GROUPS = ["control", "treatment"]
UNIT = "e2e-reader-0001"
CONDITION = {"viewport": {"$gte": 1000}, "platform": "desktop"}
SERVER = {"site": "enwiki", "platform": "desktop", "is_logged_in": False, "skin": "vector-2022"}
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>targeted payload</title></head><body>{block}
<script type="module">
import {{ createClient }} from "/splitlab-sdk/index.js";

const client = await createClient({{ attributes: {{ viewport: window.innerWidth }},
                                     names: ["{name}"] }});
const experiment = client.getExperiment("{name}");
const sent = experiment.sendExposure();
window.outcome = {{ group: experiment.getAssignedGroup(), reason: experiment.reason, sent,
                    error: client.error, enrolled: client.enrolled }};
</script></body></html>
"""


def expected() -> tuple[str, str]:
    """The subject id and group by DESIGN.md's formula (equal weights, every unit in sample)."""
    subject = hashlib.sha256((UNIT + NAME).encode()).hexdigest()
    return subject, GROUPS[int(subject[:6], 16) * len(GROUPS) >> 24]


@dataclass
class Site:
    pages: dict[str, bytes]
    keys: bytes
    events: list[dict[str, Any]] = field(default_factory=list)


def handler(site: Site) -> type[SdkHandler]:
    class Handler(SdkHandler):
        """The pages, the keys, the SDK's modules and an intake that records events."""

        def get(self, path: str) -> None:
            if path in site.pages:
                self.send(site.pages[path], "text/html; charset=utf-8")
            elif path == KEYS_PATH:
                self.send(site.keys, "application/json")
            else:
                self.send_error(HTTPStatus.NOT_FOUND)

        def do_POST(self) -> None:
            if self.path != "/v1/events":
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            site.events.extend(json.loads(body))
            self.send_response(HTTPStatus.CREATED)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[tuple[str, Site]]:
    pytest.importorskip("cryptography")
    from splitlab.sdk.signing import load_or_create_signer

    experiment = Experiment.from_config({
        "name": NAME, "groups": GROUPS, "algorithm": "sl-v2", "targeting": CONDITION,
        "traffic_split": {"default": {"control": 50, "treatment": 50}},
        "user_identifier_type": "edge-unique"})
    signer = load_or_create_signer(tmp_path)
    now = datetime.now(UTC)
    pages = {}
    for path, options in (("/", PayloadOptions()), ("/hashed", PayloadOptions(salt="e2e-salt"))):
        payload = build_payload([experiment], {"edge-unique": UNIT}, now, options, SERVER)
        block = render_bootstrap(signer.sign(payload))
        pages[path] = PAGE.format(block=block, name=NAME).encode()
    site = Site(pages, json.dumps(signer.jwks()).encode())
    with serving(handler(site)) as url:
        yield url, site


def test_the_page_attribute_decides_enrollment_and_exposure(origin: tuple[str, Site]) -> None:
    if not CHROMIUM.exists():
        unavailable("Debian's chromium is not installed (/usr/bin/chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    base, site = origin
    outcomes: dict[tuple[str, int], dict[str, Any]] = {}
    events: dict[tuple[str, int], list[dict[str, Any]]] = {}
    errors: list[str] = []
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM))
        try:
            for path in ("/", "/hashed"):
                for width in (1280, 800):
                    tab = browser.new_page(viewport={"width": width, "height": 800})
                    tab.on("console",
                           lambda m: errors.append(m.text) if m.type == "error" else None)
                    tab.on("pageerror", lambda e: errors.append(str(e)))
                    before = len(site.events)
                    tab.goto(base + path)
                    tab.wait_for_function("window.outcome !== undefined", timeout=30_000)
                    outcomes[path, width] = tab.evaluate("window.outcome")
                    deadline = time.monotonic() + (5 if outcomes[path, width]["sent"] else 1)
                    while len(site.events) == before and time.monotonic() < deadline:
                        tab.wait_for_timeout(50)
                    events[path, width] = site.events[before:]
                    tab.close()
        finally:
            browser.close()

    assert errors == []
    subject, group = expected()
    for path in ("/", "/hashed"):
        assert outcomes[path, 1280] == {"group": group, "reason": "assigned", "sent": True,
                                        "error": None, "enrolled": [NAME]}
        assert outcomes[path, 800] == {"group": None, "reason": "targeting", "sent": False,
                                       "error": None, "enrolled": []}
        (event,) = events[path, 1280]
        assert event["action"] == "experiment_exposure"
        assert (event["experiment"]["enrolled"], event["experiment"]["assigned"],
                event["experiment"]["subject_id"]) == (NAME, group, subject)
        assert events[path, 800] == []
    # the condition travels; the server attributes it does not read do not
    page = site.pages["/"].decode()
    assert '\\"targeting\\":{\\"platform\\":\\"desktop\\",\\"viewport\\"' in page
    assert "enwiki" not in page and "vector-2022" not in page
