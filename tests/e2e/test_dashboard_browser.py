"""The dashboard end to end in headless Chromium against a real ``splitlab serve``.

Real events go through ``/v1/events`` and the in-service scheduler computes the results (no CLI
step). The oracles are independent of the dashboard: the admin and results APIs, the units
counted from the events the test sent (:mod:`tests.integration.results_scenario`), and
``splitlab.assign`` for the debugger. Every page is checked by axe-core (npm, injected into the
page), for console errors, for requests leaving the server's origin and for horizontal overflow;
screenshots at 1280×800 and 390×844 go to ``tmp/artifacts/dashboard/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dashboard_helpers import (
    AXE,
    BROWSER_ARGS,
    CHROMIUM,
    TOKEN,
    Watch,
    dashboard_service,
    sign_in,
)
from dashboard_helpers import check_page as check_any_page
from tests.integration.results_scenario import EXPERIMENT, post_all, traffic, wait_for_results
from tests.integration.serve_helpers import create_experiment

from conftest import ROOT
from splitlab import Experiment, assign

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ARTIFACTS = ROOT / "tmp" / "artifacts" / "dashboard"
OTHER = {"name": "dashboard-edge-banner", "groups": ["control", "a", "b"],
         "sample_rate": {"default": 0.5, "0.2": ["dewiki"]}, "user_identifier_type": "edge-unique"}


def check_page(page: Any, label: str) -> None:
    check_any_page(page, label, ARTIFACTS)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("duckdb")
    with dashboard_service(tmp_path_factory.mktemp("dashboard"),
                           ["--results-interval", "2"]) as url:
        yield url


def test_dashboard(service: str) -> None:
    from playwright import sync_api

    url = service
    plan = traffic(units=800)
    watch = Watch(url)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_init_script(path=str(AXE))  # a page's CSP would refuse a script tag
        page = context.new_page()
        watch.attach(page)

        page.goto(f"{url}/ui/sign-in")
        check_page(page, "sign-in")
        page.get_by_label("Admin token").fill("not-the-token")
        page.get_by_role("button", name="Sign in").click()
        assert "not the admin token" in page.get_by_role("alert").inner_text()
        sign_in(page, url)
        cookies = {c["name"]: c for c in context.cookies()}
        session = cookies["splitlab_session"]
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        assert TOKEN not in page.content() and TOKEN not in page.url

        page.get_by_role("link", name="New experiment").click()
        page.get_by_label("Name").fill(EXPERIMENT)
        page.get_by_label("Groups").fill("control, treatment")
        page.get_by_label("Sample rate").fill("2")
        page.get_by_label("Identifier type").select_option("mw-user")
        page.get_by_role("button", name="Create").click()
        error = page.locator("#sample_rate-error")
        assert error.get_attribute("role") == "alert" and "must be in [0, 1]" in error.inner_text()
        check_page(page, "form-error")
        page.get_by_label("Sample rate").fill("1")
        page.get_by_role("button", name="Create").click()
        page.wait_for_url(f"{url}/ui/experiments/{EXPERIMENT}")
        served = httpx.get(f"{url}/api/v1/experiments").json()
        assert EXPERIMENT in [row["name"] for row in served]
        check_page(page, "experiment-empty")

        page.evaluate("window.__notReloaded = true")
        post_all(url, plan.events)
        latest = wait_for_results(url, plan.expected)
        page.locator("#units-table").wait_for(timeout=20_000)
        assert page.evaluate("window.__notReloaded") is True, "the page reloaded"
        shown = {cell.get_attribute("data-group"): int(cell.inner_text().replace(",", ""))
                 for cell in page.locator("#units-table td[data-group]").all()}
        assert shown == latest["groups"] == plan.expected
        text = page.locator("#results").inner_text()
        for check in latest["health"]:
            assert f"{check['check']}: {'ok' if check['ok'] else 'failing'} — {check['reason']}" \
                in text
        check_page(page, "experiment")

        page.get_by_role("link", name="Edit").click()
        page.get_by_label("Groups").fill("control, treatment, extra")
        page.get_by_role("button", name="Save").click()
        refusal = page.get_by_role("alert").first.inner_text()
        assert "reshuffles units" in refusal and "new phase" in refusal
        check_page(page, "edit-refused")
        assert httpx.get(f"{url}/api/v1/experiments/{EXPERIMENT}").json()["row"]["groups"] == [
            "control", "treatment"]

        create_experiment(url, TOKEN, OTHER)
        rows = {row["name"]: Experiment.from_config(row)
                for row in httpx.get(f"{url}/api/v1/experiments").json()}
        page.goto(f"{url}/ui/debug")
        for n in range(50):
            identifier, site = f"{n * 7919}", ("dewiki" if n % 3 == 0 else "")
            page.get_by_label("Identifier", exact=True).fill(identifier)
            page.get_by_label("Site").fill(site)
            page.get_by_label("Attributes").fill('{"platform": "mobile"}' if n % 2 else "")
            page.get_by_role("button", name="Look up").click()
            page.locator("#answers").wait_for()
            answers = {r.get_attribute("data-experiment"): (r.get_attribute("data-group") or None,
                                                            r.get_attribute("data-subject"),
                                                            r.get_attribute("data-reason"))
                       for r in page.locator("#answers tbody tr").all()}
            expected = {}
            for name, experiment in rows.items():
                unit: int | str = int(identifier) if experiment.user_identifier_type == "mw-user" \
                    else identifier
                got = assign(unit, experiment, site or None)
                reason = "assigned" if got.in_sample else "not_sampled"
                expected[name] = (got.group, got.subject_id, reason)
            assert answers == expected, identifier
        check_page(page, "debug")
        page.get_by_label("Attributes").fill("[1]")
        page.get_by_role("button", name="Look up").click()
        assert "Attributes must be a JSON object" in page.get_by_role("alert").first.inner_text()

        page.goto(f"{url}/ui?status=running&q=dashboard")
        names = [a.inner_text() for a in page.locator("table.list tbody th a").all()]
        assert names == [OTHER["name"]]
        page.goto(f"{url}/ui")
        check_page(page, "list")

        page.goto(f"{url}/ui/experiments/{OTHER['name']}")
        page.get_by_role("link", name="End experiment").click()
        check_page(page, "confirm-end")
        page.get_by_role("button", name="End experiment").click()
        page.wait_for_url(f"{url}/ui/experiments/{OTHER['name']}")
        assert httpx.get(f"{url}/api/v1/experiments/{OTHER['name']}").json()["status"] == "ended"

        csrf_checks(url, {c["name"]: c["value"] for c in context.cookies()},
                    page_csrf(page, url))
        browser.close()
    assert watch.errors == [], watch.errors
    assert watch.foreign == [], watch.foreign


def page_csrf(page: Any, url: str) -> str:
    page.goto(f"{url}/ui/debug")
    value: str = page.locator("input[name=csrf]").first.get_attribute("value")
    return value


def csrf_checks(url: str, cookies: dict[str, str], csrf: str) -> None:
    """A form post without the token, or from another origin with the session cookie, is
    refused; the same post from the page's origin with the token is accepted."""
    form = {"name": "dashboard-csrf-probe", "groups": "a, b", "sample_rate": "1",
            "identifier_type": "session"}
    with httpx.Client(base_url=url, cookies=cookies) as client:
        missing = client.post("/ui/experiments", data=form)
        assert missing.status_code == 403 and "CSRF" in missing.text
        foreign = client.post("/ui/experiments", data={**form, "csrf": csrf},
                              headers={"Origin": "https://attacker.example"})
        assert foreign.status_code == 403
        cross = client.post("/ui/experiments", data={**form, "csrf": csrf},
                            headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
        assert client.get("/api/v1/experiments/dashboard-csrf-probe").status_code == 404
        same = client.post("/ui/experiments", data={**form, "csrf": csrf},
                           headers={"Origin": url})
        assert same.status_code == 303, same.text
        assert re.search("dashboard-csrf-probe", same.headers["location"])
