"""The dashboard's sl-v2 form end to end in headless Chromium against a real ``splitlab serve``.

An experiment with a weighted split on two sites (default and dewiki), a layer range, a holdout
and a targeting condition is created through the form, after a malformed condition and a site
whose percents pass 100 are refused next to their fields. The oracles are independent of the
dashboard: the row the admin API serves, and :func:`splitlab.core.resolution.resolve` for the
debugger's answers. A changed ratio of the running experiment is refused at the split. The form
is also driven with JavaScript off (both algorithms' fields shown; "Add site" re-renders the
page). Every page is checked by axe-core, for console errors, foreign requests and horizontal
overflow; screenshots go to ``tmp/artifacts/dashboard-slv2/``.
"""

from __future__ import annotations

import json
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
    check_page,
    dashboard_service,
    sign_in,
)

from conftest import ROOT
from splitlab.core.model import Experiment
from splitlab.core.resolution import resolve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ARTIFACTS = ROOT / "tmp" / "artifacts" / "dashboard-slv2"
NAME = "weighted-browser-exp"
SPLIT = {"default": {"control": 30, "treatment": 10},
         "dewiki": {"control": 12.5, "treatment": 37.5}}
CONDITION = {"$or": [{"platform": "mobile"}, {"edit_count": {"$gte": 10}}]}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with dashboard_service(tmp_path_factory.mktemp("slv2-form")) as url:
        admin = {"Authorization": f"Bearer {TOKEN}"}
        for kind, entity in (("layers", {"name": "reading"}),
                             ("holdouts", {"name": "global-2026", "percent": 5})):
            made = httpx.post(f"{url}/api/v1/{kind}", json=entity, headers=admin, timeout=10)
            assert made.status_code == 201, made.text
        yield url


def total(page: Any, row: int) -> str:
    text: str = page.locator(f'tr[data-row="{row}"] [data-total]').inner_text()
    return text.strip()


def fill_form(page: Any) -> None:
    """Name, groups, sl-v2, the default row and a dewiki row (with a sum over 100), a layer
    range, a holdout, and a condition that is not JSON."""
    page.get_by_label("Name").fill(NAME)
    page.get_by_label("Groups").fill("control, treatment")
    page.get_by_label("sl-v2 (weighted split)").check()
    assert not page.get_by_label("Sample rate").is_visible()  # the other algorithm's field
    page.get_by_role("button", name="Update columns").click()
    page.get_by_label("default: control percent").fill("30")
    page.get_by_label("default: treatment percent").fill("10")
    assert total(page, 0) == "40%"
    page.get_by_role("button", name="Add site").click()
    page.wait_for_function("document.activeElement.id === 'site-1'")  # autofocus: the new row
    page.get_by_label("Site of row 2").fill("dewiki")
    page.get_by_label("row 2: control percent").fill("12.5")
    page.get_by_label("row 2: treatment percent").fill("90")
    assert total(page, 1) == "102.5%\nover 100"
    page.get_by_label("Layer", exact=True).fill("reading")
    page.get_by_label("From bin").fill("0")
    page.get_by_label("To bin").fill("60000")
    page.get_by_label("Holdouts").fill("global-2026:5")
    page.get_by_label("Identifier type").select_option("session")
    page.get_by_label("Targeting condition").fill('{"$or": [{"platform": "mobile"}')


def test_slv2_form(service: str) -> None:
    from playwright import sync_api

    url = service
    watch = Watch(url)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_init_script(path=str(AXE))
        page = context.new_page()
        watch.attach(page)
        sign_in(page, url)

        page.goto(f"{url}/ui/experiments/new")
        check_page(page, "form-empty", ARTIFACTS)
        fill_form(page)
        page.get_by_role("button", name="Create").click()
        error = page.locator("#targeting-error")
        assert error.get_attribute("role") == "alert"
        assert "is not valid JSON" in error.inner_text() and "line 1" in error.inner_text()
        check_page(page, "form-error-targeting", ARTIFACTS)

        page.get_by_label("Targeting condition").fill(
            '{"$or": [{"platform": "mobile"}, {"edit_count": {"$gte": 10}}]}')
        page.get_by_role("button", name="Create").click()
        error = page.locator("#traffic_split-error")
        assert error.inner_text() == "dewiki: percents sum to 102.5, more than 100"
        assert page.locator('tr[data-row="1"]').get_attribute("class") == "invalid"
        check_page(page, "form-error-split", ARTIFACTS)

        page.get_by_label("dewiki: treatment percent").fill("37.5")
        assert total(page, 1) == "50%"
        check_page(page, "form-filled", ARTIFACTS)
        page.get_by_role("button", name="Create").click()
        page.wait_for_url(f"{url}/ui/experiments/{NAME}")
        check_page(page, "experiment", ARTIFACTS)
        shown = {row.get_attribute("data-site"): row.inner_text().split("\t")
                 for row in page.locator("#split tbody tr").all()}
        assert shown == {"default": ["default", "30%", "10%", "40%"],
                         "dewiki": ["dewiki", "12.5%", "37.5%", "50%"]}

        row = httpx.get(f"{url}/api/v1/experiments/{NAME}").json()["row"]
        assert {k: row.get(k) for k in ("algorithm", "groups", "traffic_split", "targeting",
                                        "sample_rate", "user_identifier_type", "layer",
                                        "holdouts")} == {
            "algorithm": "sl-v2", "groups": ["control", "treatment"], "traffic_split": SPLIT,
            "targeting": CONDITION, "sample_rate": {"default": 0.4, "0.5": ["dewiki"]},
            "user_identifier_type": "session", "layer": {"name": "reading", "range": [0, 60000]},
            "holdouts": [{"name": "global-2026", "percent": 5}]}
        check_debugger(page, url, Experiment.from_config(row))

        page.goto(f"{url}/ui/experiments/{NAME}/edit")
        assert page.get_by_label("dewiki: control percent").input_value() == "12.5"
        page.get_by_label("dewiki: control percent").fill("20")
        page.get_by_role("button", name="Save").click()
        refusal = page.locator("#traffic_split-error").inner_text()
        assert "the group ratios on site 'dewiki' cannot change" in refusal, refusal
        assert page.get_by_label("Start a new phase").is_visible()
        check_page(page, "edit-refused-split", ARTIFACTS)
        assert httpx.get(f"{url}/api/v1/experiments/{NAME}").json()["row"] == row
        check_without_javascript(browser, url)
        browser.close()
    assert watch.errors == [], watch.errors
    assert watch.foreign == [], watch.foreign


def check_debugger(page: Any, url: str, experiment: Experiment) -> None:
    """The debugger's group and reason equal the core's resolve for the same unit, site and
    attributes (the site is an attribute too)."""
    page.goto(f"{url}/ui/debug")
    seen = set()
    for n in range(36):
        identifier = f"browser-unit-{n * 7919}"
        site = ("", "dewiki", "enwiki")[n % 3]
        attributes = ({"platform": "mobile"}, {"edit_count": 3}, {"edit_count": 12})[n % 4 % 3]
        page.get_by_label("Identifier", exact=True).fill(identifier)
        page.get_by_label("Site").fill(site)
        page.get_by_label("Attributes").fill(json.dumps(attributes))
        page.get_by_role("button", name="Look up").click()
        answer = page.locator(f'#answers tr[data-experiment="{NAME}"]')
        answer.wait_for()
        expected = resolve(identifier, experiment, site or None,
                           {**({"site": site} if site else {}), **attributes})
        got = (answer.get_attribute("data-group") or None, answer.get_attribute("data-reason"))
        assert got == (expected.group, expected.reason.value), (identifier, site, attributes)
        seen.add(expected.reason.value)
    assert {"assigned", "targeting", "layer", "not_sampled"} <= seen, seen


def check_without_javascript(browser: Any, url: str) -> None:
    """With scripts off both algorithms' fields are shown and the table's buttons re-render the
    form from the server."""
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  java_script_enabled=False)
    page = context.new_page()
    sign_in(page, url)
    page.goto(f"{url}/ui/experiments/new")
    assert page.get_by_label("Sample rate").is_visible()
    assert page.get_by_role("button", name="Add site").is_visible()
    page.get_by_label("Groups").fill("a, b, c")
    page.get_by_label("sl-v2 (weighted split)").check()
    page.get_by_role("button", name="Update columns").click()
    page.get_by_label("default: c percent").fill("5")
    page.get_by_role("button", name="Add site").click()
    assert page.get_by_label("Site of row 2").is_visible()
    assert page.get_by_label("default: c percent").input_value() == "5"
    assert total(page, 0) == "5%"
    page.get_by_role("button", name="Remove row 2").click()
    assert page.get_by_label("Site of row 2").count() == 0
    context.close()
