"""End to end in headless Chromium: the example app (``examples/client_demo``) renders the
signed bootstrap through the SDK's middleware under a strict CSP, the browser SDK verifies it
and beacons one exposure across two page views to a real ``splitlab serve`` on another origin.

Everything is real: the service (registry, admin API, key pair, intake into its SQLite event
log) and the example app run as subprocesses; the expected group and subject id come from
DESIGN.md's tk-v1 formula written out here, with the anonymous id read from the browser's cookie.
The page is opened as ``http://localhost:<port>`` (a secure context, so WebCrypto works) and the
intake is ``http://127.0.0.1:<port>``: another origin, and the stored bytes must not contain the
connecting address ``127.0.0.1`` (``meta.domain`` is ``localhost``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.serve_helpers import free_port

from conftest import ROOT, unavailable
from splitlab.intake.export import iterate, open_reader

pytestmark = pytest.mark.e2e
NAME = "client-sticky-header"  # examples/client_demo/app.py STICKY_HEADER
GROUPS = ["control", "treatment"]
CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "e2e-admin-token-0123456789"
FORWARDED = "203.0.113.77"
COOKIE = "splitlab_anon"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]


def expected(anonymous_id: str) -> tuple[str, str]:
    """tk-v1 by the formula in DESIGN.md, written out here (rate 1: always in sample)."""
    subject = hashlib.sha256((anonymous_id + NAME).encode()).hexdigest()
    return subject, GROUPS[int(subject[:6], 16) * len(GROUPS) >> 24]


def treatment_unit() -> str:
    """An anonymous id (cookie grammar) whose group is the treatment, by the formula above."""
    for n in range(100):
        candidate = f"e2e-reader-{n:08d}"
        if expected(candidate)[1] == "treatment":
            return candidate
    raise AssertionError("no treatment unit among 100 candidates")


def wait_until_up(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail(f"{what} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@dataclass(frozen=True)
class Site:
    server: str  # the splitlab service (other origin)
    app_port: int
    data_dir: Path

    @property
    def page(self) -> str:
        return f"http://localhost:{self.app_port}/"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not CHROMIUM.exists():
        unavailable("Debian's chromium is not installed (/usr/bin/chromium)")
    for module in ("playwright", "uvicorn", "cryptography"):
        try:
            __import__(module)
        except ImportError:
            unavailable(f"the {module} package is not installed (dev and examples extras)")
    data_dir = tmp_path_factory.mktemp("splitlab-data")
    server_port, app_port = free_port(), free_port()
    server = f"http://127.0.0.1:{server_port}"
    env = {**os.environ, "SPLITLAB_ADMIN_TOKEN": TOKEN,
           "SPLITLAB_EVENTS_CORS_ORIGINS": f"http://localhost:{app_port}"}
    service = subprocess.Popen(
        [sys.executable, "-c", "from splitlab.cli import main; main()", "serve", "--data-dir",
         str(data_dir), "--port", str(server_port), "--workers", "1"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    app: subprocess.Popen[bytes] | None = None
    try:
        wait_until_up(f"{server}/healthz", service, "splitlab serve")
        now = datetime.now(UTC).replace(microsecond=0)
        row = {"name": NAME, "groups": GROUPS, "sample_rate": {"default": 1},
               "user_identifier_type": "edge-unique",
               "start": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "end": (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "stream_name": "product_metrics.web_base",
               "schema_id": "/analytics/product_metrics/web/base/2.1.0"}
        created = httpx.post(f"{server}/api/v1/experiments", json=row,
                             headers={"Authorization": f"Bearer {TOKEN}"})
        assert created.status_code == 201, created.text
        app_env = {**env, "SPLITLAB_URL": server,
                   "SPLITLAB_SIGNING_KEY": str(data_dir / "client-signing-key.pem")}
        app = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "client_demo.app:app_from_env",
             "--host", "127.0.0.1", "--port", str(app_port), "--log-level", "warning"],
            cwd=ROOT / "examples", env=app_env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_up(f"http://127.0.0.1:{app_port}/favicon.ico", app, "the example app")
        yield Site(server, app_port, data_dir)
    finally:
        if app is not None:
            stop(app)
        stop(service)


def exposures(data_dir: Path) -> list[dict[str, Any]]:
    """The experiment_exposure events in the service's event log, as stored."""
    try:
        reader = open_reader(data_dir, None)
    except Exception:  # no event log yet
        return []
    try:
        events = [json.loads(e.body) for e in iterate(reader, None, None)]
    finally:
        reader.close()
    return [e for e in events if e.get("action") == "experiment_exposure"]


def wait_for_exposures(data_dir: Path, count: int, seconds: float = 10) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    found = exposures(data_dir)
    while len(found) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        found = exposures(data_dir)
    time.sleep(1.0)  # room for a second (wrong) exposure to arrive
    return exposures(data_dir)


def test_first_html_carries_the_treatment_and_the_signed_block(site: Site) -> None:
    unit = treatment_unit()
    response = httpx.get(f"http://127.0.0.1:{site.app_port}/", cookies={COOKIE: unit})
    assert response.status_code == 200
    first_html = response.text
    body_tag = re.search(r"<body\b[^>]*>", first_html)
    assert body_tag is not None
    assert f'class="xlab-experiment-{NAME} xlab-experiment-{NAME}-treatment"' in body_tag.group(0)
    assert '<script type="application/json" id="splitlab-config">' in first_html
    # CSP-friendly: every script is external or a data block; the policy allows no inline code
    for script in re.findall(r"<script\b[^>]*>", first_html):
        assert 'type="application/json"' in script or "src=" in script, script
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    keys = httpx.get(f"http://127.0.0.1:{site.app_port}/.well-known/splitlab-keys.json").json()
    served = httpx.get(f"{site.server}/.well-known/splitlab-keys.json").json()
    assert keys == served  # the app signs with the service's key


def test_treatment_without_flash_and_one_exposure_across_two_views(site: Site) -> None:
    from playwright import sync_api

    unit = treatment_unit()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            context = browser.new_context(extra_http_headers={"X-Forwarded-For": FORWARDED})
            context.add_cookies([{"name": COOKIE, "value": unit, "url": site.page,
                                  "httpOnly": True}])
            tab = context.new_page()
            problems: list[str] = []
            tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: problems.append(str(e)))
            beacons: list[dict[str, str]] = []
            tab.on("requestfinished", lambda r: beacons.append(r.all_headers())
                   if r.url == f"{site.server}/v1/events" else None)
            notes, first_classes = [], []
            for _ in range(2):
                response = tab.goto(site.page)
                assert response is not None
                first_classes.append(re.search(r"<body\b[^>]*>", response.text()))
                tab.wait_for_selector("html[data-splitlab]", state="attached")
                notes.append(json.loads(tab.evaluate("document.documentElement.dataset.splitlab")))
                classes = tab.evaluate("document.body.className").split()
                assert f"xlab-experiment-{NAME}-treatment" in classes
            deadline = time.monotonic() + 5
            while not beacons and time.monotonic() < deadline:  # let the beacon finish
                tab.wait_for_timeout(50)
            sticky = tab.evaluate(
                "getComputedStyle(document.querySelector('.site-header')).position")
            cookie = {c["name"]: c["value"] for c in context.cookies(site.page)}[COOKIE]
        finally:
            browser.close()

    assert problems == []
    # one cross-origin beacon, CORS-safelisted (no preflight), carrying the forwarded address
    assert len(beacons) == 1
    assert beacons[0]["content-type"].startswith("text/plain")
    assert beacons[0]["origin"] == f"http://localhost:{site.app_port}"
    assert beacons[0]["x-forwarded-for"] == FORWARDED
    assert all(f"xlab-experiment-{NAME}-treatment" in str(m and m.group(0))
               for m in first_classes)
    assert sticky == "sticky"  # the treatment's stylesheet rule applies
    subject, group = expected(cookie)
    assert (cookie, group) == (unit, "treatment")
    assert notes == [{"group": group, "sent": True, "error": None},
                     {"group": group, "sent": False, "error": None}]

    stored = wait_for_exposures(site.data_dir, 1)
    assert len(stored) == 1
    event = stored[0]
    assert event["experiment"]["subject_id"] == subject
    assert event["experiment"]["assigned"] == group
    assert event["experiment"]["enrolled"] == NAME
    assert event["meta"]["stream"] == "product_metrics.web_base"
    assert event["meta"]["domain"] == "localhost"
    assert unit not in json.dumps(event)
    # no address anywhere in what the service stored (event log, spool, registry)
    for path in site.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"127.0.0.1" not in data, path
            assert FORWARDED.encode() not in data, path


def test_a_tampered_payload_applies_no_group_and_sends_nothing(site: Site) -> None:
    from playwright import sync_api

    unit = treatment_unit()
    before = len(wait_for_exposures(site.data_dir, 0, 0))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": COOKIE, "value": unit, "url": site.page,
                                  "httpOnly": True}])
            tab = context.new_page()
            changed = []

            def tamper(route: Any) -> None:
                original = route.fetch()
                text = original.text()
                block = text.index('id="splitlab-config">')
                at = text.index("treatment", block) + len("treatmen")  # inside the payload text
                changed.append(text[at])
                route.fulfill(response=original, body=text[:at] + "u" + text[at + 1:])

            tab.route(site.page, tamper)
            tab.goto(site.page)
            tab.wait_for_selector("html[data-splitlab]", state="attached")
            note = json.loads(tab.evaluate("document.documentElement.dataset.splitlab"))
            classes = tab.evaluate("document.body.className").split()
        finally:
            browser.close()

    assert changed == ["t"]  # exactly one byte of the signed payload was altered
    assert note["group"] is None and note["sent"] is False
    assert note["error"]
    assert not [c for c in classes if c.startswith("xlab-experiment-")]
    assert len(wait_for_exposures(site.data_dir, before + 1, 2)) == before
