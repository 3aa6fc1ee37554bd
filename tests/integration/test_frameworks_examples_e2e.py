"""End to end: ``examples/frameworks_demo`` as a FastAPI app under uvicorn, and as a Django site
under uvicorn (ASGI) and under ``runserver`` (WSGI). Each is a real server process answering
real HTTP with gzip on; its splitlab client reads the config from and sends events to a
stand-in of the splitlab server on a local port. Pages come back compressed, decorated with the
group DESIGN.md's formula gives for the cookie's anonymous id, their head script intact; the
exposures of the two page views (not of HEAD) arrive with that id's subject id.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from conftest import ROOT
from tests.integration.serve_helpers import free_port
from tests.unit.sdk.compress_helpers import GROUPS
from tests.unit.sdk.sdk_helpers import IntakeStub, oracle, row
from tests.unit.sdk.web_helpers import read_page

pytestmark = pytest.mark.integration
NAME = "frameworks-banner"
ANON = "Frameworks_demo_visitor_01"
SERVERS = {
    "fastapi-uvicorn": ["-m", "uvicorn", "frameworks_demo.fastapi_app:app", "--proxy-headers",
                        "--forwarded-allow-ips", "127.0.0.1", "--port"],
    "django-uvicorn-asgi": ["-m", "uvicorn", "frameworks_demo.django_site.asgi:application",
                            "--port"],
    "django-runserver-wsgi": ["-m", "django", "runserver", "--noreload", "--settings",
                              "frameworks_demo.django_site.settings", "127.0.0.1:{port}"],
}


@pytest.fixture
def stub() -> Iterator[IntakeStub]:
    pytest.importorskip("fastapi")
    pytest.importorskip("django")
    intake = IntakeStub()
    intake.rows = [row(NAME, "edge-unique", start="2020-01-01T00:00:00Z",
                       end="2099-01-01T00:00:00Z")]
    yield intake
    intake.close()


def serve(kind: str, stub: IntakeStub) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [a.format(port=port) for a in SERVERS[kind]]
    if "{port}" not in " ".join(SERVERS[kind]):
        args.append(str(port))
    env = {**os.environ, "SPLITLAB_URL": stub.base_url,
           "PYTHONPATH": str(ROOT / "examples") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, *args], cwd=ROOT / "examples", env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{kind} exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/api/banner", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail(f"{kind} did not start")


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_the_example_serves_decorated_compressed_pages(kind: str, stub: IntakeStub) -> None:
    process, url = serve(kind, stub)
    try:
        group = oracle(ANON, NAME, GROUPS, 1.0)
        with httpx.Client(base_url=url, cookies={"splitlab_anon": ANON},
                          headers={"accept-encoding": "gzip"}) as browser:
            for path in ("/", "/stream"):
                response = browser.get(path)
                assert response.status_code == 200
                assert response.headers["content-encoding"] == "gzip"
                page = read_page(response.text)
                assert page.config is not None and page.config["assigned"] == {NAME: group}
                assert page.body_classes == ["demo", f"xlab-experiment-{NAME}",
                                             f"xlab-experiment-{NAME}-{group}"]
                assert "const template = '<body class=\"x\">';" in response.text
                assert ("Try the new editor!" in response.text) is (group == "treatment")
            assert browser.head("/").status_code == 200
            api = browser.get("/api/banner")
            assert api.json() == {"group": group}
            assert api.headers["x-experiment-enrollments"] == f"{NAME}={group};"
        proxied = httpx.get(f"{url}/api/banner", headers={"x-forwarded-proto": "https"})
        assert "Secure" in proxied.headers["set-cookie"]
        assert "Secure" not in httpx.get(f"{url}/api/banner").headers["set-cookie"]
        exposures = wait_for_exposures(stub, 2)
        time.sleep(1.0)  # a HEAD exposure, were one sent, would arrive by now
        assert len([e for e in stub.events if e["action"] == "experiment_exposure"]) == 2
        subject = hashlib.sha256((ANON + NAME).encode()).hexdigest()
        assert {(e["experiment"]["assigned"], e["experiment"]["subject_id"])
                for e in exposures} == {(group, subject)}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)


def wait_for_exposures(stub: IntakeStub, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = [e for e in stub.events if e["action"] == "experiment_exposure"]
        if len(found) >= count:
            return found
        time.sleep(0.2)
    pytest.fail(f"expected {count} exposures, got {stub.events}")
