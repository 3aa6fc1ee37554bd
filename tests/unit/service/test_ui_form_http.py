"""The experiment form's sl-v2 part through the whole service (no browser, no JavaScript): the
posts a plain HTML form sends, the rows the admin API then serves, and refusals shown next to
the field they are about."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from .service_helpers import ADMIN, TOKEN, create_experiment, whole_service

STARTED = "2026-01-05T10:20:30Z"
FORM = {"name": "weighted-http-exp", "groups": "control, treatment", "algorithm": "sl-v2",
        "site-0": "default", "pct-0-0": "30", "pct-0-1": "10",
        "site-1": "dewiki", "pct-1-0": "12.5", "pct-1-1": "37.5",
        "layer_name": "reading", "layer_lo": "0", "layer_hi": "25000",
        "holdouts": "global-2026:2.5", "targeting": '{"platform": "mobile"}',
        "identifier_type": "session", "sample_rate": "1"}
ROW = {"name": "running-weighted-exp", "groups": ["control", "treatment"],
       "algorithm": "sl-v2", "user_identifier_type": "session", "start": STARTED,
       "traffic_split": {"default": {"control": 10, "treatment": 30},
                         "enwiki": {"control": 5, "treatment": 5}}}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with whole_service(tmp_path) as client:
        for kind, entity in (("layers", {"name": "reading"}),
                             ("holdouts", {"name": "global-2026", "percent": 2.5})):
            made = client.post(f"/api/v1/{kind}", json=entity, headers=ADMIN)
            assert made.status_code == 201, made.text
        page = client.get("/ui/sign-in")
        client.post("/ui/sign-in", data={"csrf": csrf_of(page.text), "token": TOKEN,
                                         "next": "/ui"})
        yield client


def csrf_of(text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert found is not None
    return found.group(1)


def post(client: TestClient, path: str, form: dict[str, str]) -> Any:
    token = csrf_of(client.get("/ui/experiments/new").text)
    return client.post(path, data={"csrf": token, **form}, follow_redirects=False)


def edit_values(client: TestClient, name: str) -> dict[str, str]:
    """The values of the edit form's inputs, as a browser without JavaScript posts them."""
    text = client.get(f"/ui/experiments/{name}/edit").text
    values: dict[str, str] = {}
    for tag in re.findall(r"<input [^>]*>", text):
        kind = re.search(r'type="(\w+)"', tag)
        name_of, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        if name_of is None or (kind and kind.group(1) in ("radio", "checkbox")
                               and "checked" not in tag):
            continue
        values[name_of.group(1)] = html.unescape(value.group(1)) if value else ""
    selected = re.search(r'<option value="([^"]+)" selected', text)
    values["identifier_type"] = selected.group(1) if selected else ""
    area = re.search(r'<textarea [^>]*name="targeting"[^>]*>(.*?)</textarea>', text, re.S)
    values["targeting"] = html.unescape(area.group(1)) if area else ""
    return values


def row(client: TestClient, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/api/v1/experiments/{name}").json()["row"]
    return found


def test_a_plain_form_post_creates_the_sl_v2_row(client: TestClient) -> None:
    created = post(client, "/ui/experiments", FORM)
    assert created.status_code == 303, created.text
    saved = row(client, FORM["name"])
    assert {k: saved[k] for k in ("algorithm", "traffic_split", "layer", "holdouts",
                                  "targeting", "sample_rate")} == {
        "algorithm": "sl-v2",
        "traffic_split": {"default": {"control": 30, "treatment": 10},
                          "dewiki": {"control": 12.5, "treatment": 37.5}},
        "layer": {"name": "reading", "range": [0, 25000]},
        "holdouts": [{"name": "global-2026", "percent": 2.5}],
        "targeting": {"platform": "mobile"}, "sample_rate": {"default": 0.4, "0.5": ["dewiki"]}}
    page = client.get(f"/ui/experiments/{FORM['name']}").text
    assert re.search(r'<tr data-site="dewiki"><th scope="row">dewiki</th>'
                     r'<td class="num" data-group="control">12.5%</td>'
                     r'<td class="num" data-group="treatment">37.5%</td>'
                     r'<td class="num">50%</td></tr>', page)
    assert "reading: bins 0 to 24,999 of 100,000 (25% of units)" in page
    assert "global-2026 (2.5%)" in page
    condition = re.search(r'<pre class="condition" id="targeting">(.*?)</pre>', page, re.S)
    assert condition is not None
    assert html.unescape(condition.group(1)) == '{"platform": "mobile"}'


def test_table_buttons_re_render_without_saving(client: TestClient) -> None:
    added = post(client, "/ui/experiments", {**FORM, "op": "add-site"})
    assert added.status_code == 200
    assert re.search(r'<input id="site-2" name="site-2" value=""[^>]*autofocus', added.text)
    removed = post(client, "/ui/experiments", {**FORM, "op": "remove-1"})
    assert 'name="site-1"' not in removed.text and 'value="12.5"' not in removed.text
    assert client.get(f"/api/v1/experiments/{FORM['name']}").status_code == 404


def test_a_refused_field_is_marked_and_keeps_what_was_typed(client: TestClient) -> None:
    refused = post(client, "/ui/experiments", {**FORM, "pct-1-1": "90"})
    assert refused.status_code == 200
    assert re.search(r'<p class="error" id="traffic_split-error" role="alert">'
                     r"dewiki: percents sum to 102.5, more than 100</p>", refused.text)
    assert re.search(r'<tr data-row="1" class="invalid">', refused.text)
    assert re.search(r'over 100', refused.text) and 'value="90"' in refused.text
    bad = post(client, "/ui/experiments", {**FORM, "targeting": '{"platform": {"$regx": "m"}}'})
    assert re.search(r'id="targeting-error" role="alert">platform.\$regx is not an operator',
                     bad.text)
    assert re.search(r'<textarea id="targeting"[^>]*aria-invalid="true"', bad.text)


def test_an_unchanged_running_experiment_saves_as_it_is(client: TestClient) -> None:
    create_experiment(client, ROW)
    saved = post(client, f"/ui/experiments/{ROW['name']}/edit",
                 edit_values(client, ROW["name"]))
    assert saved.status_code == 303, saved.text
    history = client.get(f"/api/v1/experiments/{ROW['name']}/history", headers=ADMIN).json()
    assert [change["revision"] for change in history["history"]] == [1]


def test_changed_ratios_of_a_running_experiment_are_refused_at_the_split(
        client: TestClient) -> None:
    create_experiment(client, ROW)
    values = edit_values(client, ROW["name"])
    assert (values["site-1"], values["pct-1-0"], values["start"]) == (
        "enwiki", "5", STARTED[:19])
    refused = post(client, f"/ui/experiments/{ROW['name']}/edit", {**values, "pct-1-0": "6"})
    assert refused.status_code == 200
    assert re.search(r'id="traffic_split-error" role="alert">Not saved: experiment '
                     r"&#39;running-weighted-exp&#39; has started; the group ratios on site "
                     r"&#39;enwiki&#39; cannot change", refused.text)
    assert '<tr data-row="1" class="invalid">' in refused.text
    assert "Start a new phase" in refused.text
    assert row(client, ROW["name"])["traffic_split"] == ROW["traffic_split"]
    raised = post(client, f"/ui/experiments/{ROW['name']}/edit",
                  {**values, "pct-1-0": "10", "pct-1-1": "10"})
    assert raised.status_code == 303, raised.text
    assert row(client, ROW["name"])["sample_rate"] == {"default": 0.4, "0.2": ["enwiki"]}


def test_a_running_tk_v1_experiment_becomes_sl_v2_with_its_equal_split(
        client: TestClient) -> None:
    plain = {"name": "running-plain-exp", "groups": ["a", "b"], "start": STARTED,
             "sample_rate": {"default": 0.5, "0.1": ["enwiki"]}, "user_identifier_type": "session"}
    create_experiment(client, plain)
    values = {**edit_values(client, plain["name"]), "algorithm": "sl-v2"}
    saved = post(client, f"/ui/experiments/{plain['name']}/edit", values)
    assert saved.status_code == 303, saved.text
    converted = row(client, plain["name"])
    assert converted["traffic_split"] == {"default": {"a": 25, "b": 25},
                                          "enwiki": {"a": 5, "b": 5}}
    assert converted["sample_rate"] == plain["sample_rate"]
