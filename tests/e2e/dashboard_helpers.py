"""What the dashboard's browser tests share: the browser's settings, what a page must not do
(console errors, requests to other origins), the checks and screenshots of every page, signing
in, and a real ``splitlab serve`` to drive."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.integration.serve_helpers import free_port, server

from conftest import ROOT, unavailable

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "tests" / "e2e" / "node_modules" / "axe-core" / "axe.min.js"
TOKEN = "dashboard-e2e-admin-token-0123456789"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]

WIDEST = """() => [...document.querySelectorAll("main *")]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth)
  .slice(0, 5).map(e => e.outerHTML.slice(0, 120))"""
"""The first elements that reach past the window's right edge (to say what overflows)."""


@dataclass
class Watch:
    """What the browser did that it must not: console errors and requests to other origins."""

    origin: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith((self.origin + "/", "data:"))
                else self.foreign.append(r.url))


def check_page(page: Any, label: str, artifacts: Path) -> None:
    """axe-core finds nothing serious, nothing overflows, and screenshots at both sizes go to
    ``artifacts``."""
    artifacts.mkdir(parents=True, exist_ok=True)
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(artifacts / f"{label}-{size}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        wide = page.evaluate(WIDEST) if overflow > 0 else []
        assert overflow <= 0, f"{label} overflows by {overflow}px at {size}: {wide}"
    page.set_viewport_size({"width": 1280, "height": 800})
    found = page.evaluate("async () => (await axe.run(document)).violations.map("
                          "v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.html)}))")
    bad = [v for v in found if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{label}: {bad}"


@contextmanager
def dashboard_service(data: Path, args: Sequence[str] = ()) -> Iterator[str]:
    """A real ``splitlab serve`` (one worker, admin token :data:`TOKEN`) for the browser; skips
    (or fails under ``SPLITLAB_REQUIRE_SERVICES=1``) without Chromium, axe-core or Playwright."""
    if not CHROMIUM.exists():
        unavailable("Debian's chromium is not installed (/usr/bin/chromium)")
    if not AXE.exists():
        unavailable("axe-core is not installed: cd tests/e2e && npm ci")
    pytest.importorskip("playwright")
    port = free_port()
    with server(data / "data", port, workers=1, env={"SPLITLAB_ADMIN_TOKEN": TOKEN},
                log=data / "serve.log", args=args):
        yield f"http://127.0.0.1:{port}"


def sign_in(page: Any, url: str) -> None:
    page.goto(f"{url}/ui")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/ui")
