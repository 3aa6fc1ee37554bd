"""Contract: the events Wikimedia's current clients send are stored (201) as sent, apart from the
documented enrichment (``meta.dt``, ``meta.id``, ``meta.request_id``, the ``user-agent`` header
where the stream keeps it) and stripping (``agent.ua_string`` where it does not).

The payloads are built from facts read in the clients' repositories (field names, types, which
attributes are sent when), not from splitlab's schemas:
- Metrics Platform (github.com/wikimedia/mediawiki-libs-metrics-platform @ 351eaee): the
  cross-client fixture ``tests/consistency/expected_event.json`` (read in place from the reference
  data), plus what its JS client adds that the fixture's harness leaves out: ``dt``
  (``js/src/MetricsClient.js`` processSubmitCall) and ``sample`` copied from the stream config
  (``js/src/ContextController.js``; ``tests/consistency/stream_configs.json`` has rate 1.0, unit
  session).
- Test Kitchen (github.com/wikimedia/mediawiki-extensions-TestKitchen @ cb716f4): an exposure as
  ``modules/ext.testKitchen/Experiment.js`` (send/sendExposure) and ``EventFactory.js`` build it,
  with every contextual attribute of ``modules/ext.testKitchen/ContextualAttributesFactory.js``
  requested (a logged-in user, so edit_count, edit_count_bucket and registration_dt are set), and
  the same from the PHP side (``includes/Sdk/EventFactory.php``,
  ``includes/Sdk/ContextualAttributesFactory.php``: ISO 8601 times without milliseconds,
  ``agent.ua_string`` from the User-Agent header, ``is_debug_mode`` a boolean).
"""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from splitlab.service.app import create_app
from splitlab.service.intake import IntakeComponent
from splitlab.service.settings import Settings

WEB = "/analytics/product_metrics/web/base"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
HEADERS = {"user-agent": UA, "x-request-id": "req-contract-1"}
FIXTURE = "wikimedia-schemas/examples/metrics-platform/tests/consistency/expected_event.json"


def metrics_platform_event(refdata: Path) -> dict[str, Any]:
    """The JS client's 1.5.0 event: the fixture, its dt and sample; without the harness's
    ``test`` interaction data (tests/consistency/js/main.js passes ``{test: 'consistency'}``),
    which no web base version allows (a test below shows it refused)."""
    event: dict[str, Any] = json.loads((refdata / FIXTURE).read_text())
    assert event["$schema"] == f"{WEB}/1.5.0"
    event.pop("test")
    event["dt"] = "2026-11-22T10:11:12.345Z"
    event["sample"] = {"rate": 1.0, "unit": "session"}
    return event


def kitchen_js_exposure() -> dict[str, Any]:
    """A 2.1.0 exposure from Test Kitchen's browser code with every JS contextual attribute."""
    return {
        "experiment": {"enrolled": "sticky-header-2026", "assigned": "treatment",
                       "subject_id": "3c0d4e" + "a" * 58, "sampling_unit": "mw-user",
                       "phase_index": 0, "version": 3, "coordinator": "default",
                       "other_assigned": {"dark-mode-2026": "control"}},
        "$schema": f"{WEB}/2.1.0",
        "meta": {"domain": "en.wikipedia.org", "stream": "product_metrics.web_base"},
        "dt": "2026-11-22T10:11:12.345Z",
        "action": "experiment_exposure",
        "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser",
                  "ua_string": UA},
        "page": {"id": 30715282, "title": "Dark Souls", "namespace_id": 0, "namespace_name": "",
                 "revision_id": 1084793259, "wikidata_qid": "Q1166232", "content_language": "en",
                 "is_redirect": False, "user_groups_allowed_to_move": [],
                 "user_groups_allowed_to_edit": []},
        "mediawiki": {"skin": "vector-2022", "version": "1.46.0-wmf.3", "is_production": True,
                      "is_debug_mode": 0, "database": "enwiki", "site_content_language": "en"},
        "performer": {"is_logged_in": True, "id": 12345, "name": "Example", "groups":
                      ["*", "user", "autoconfirmed"], "is_bot": False, "is_temp": False,
                      "language": "en", "language_variant": "en", "can_probably_edit_page": True,
                      "edit_count": 42, "edit_count_bucket": "5-99 edits",
                      "registration_dt": "2020-05-01T12:00:00.000Z",
                      "session_id": "0123456789abcdefghij", "pageview_id": "abcdefghij0123456789"},
    }


def kitchen_php_exposure() -> dict[str, Any]:
    """The same exposure as Test Kitchen's PHP SDK sends it."""
    event = kitchen_js_exposure()
    event["dt"] = "2026-11-22T10:11:12Z"
    event["agent"]["client_platform"] = "mediawiki_php"
    del event["page"]["user_groups_allowed_to_move"], event["page"]["user_groups_allowed_to_edit"]
    event["page"]["title"] = "Dark_Souls"  # Title::getDBkey()
    event["mediawiki"]["is_debug_mode"] = False
    event["performer"]["registration_dt"] = "2020-05-01T12:00:00Z"
    for key in ("session_id", "pageview_id", "language_variant"):
        del event["performer"][key]
    return event


def post_and_read(tmp_path: Path, events: list[dict[str, Any]], keep_user_agent: bool = False,
                  ) -> tuple[int, list[dict[str, Any]]]:
    """POST ``events`` to a fresh intake (the streams they name, keeping the user agent or not)
    and return the status and every stored body, in order."""
    streams = {s["meta"]["stream"] for s in events}
    config = {"streams": {"splitlab.error.validation": {"schema_title": "error"},
                          **{name: {"schema_title": WEB.strip("/"),
                                    "keep_user_agent": keep_user_agent} for name in streams}}}
    (tmp_path / "streams.json").write_text(json.dumps(config))
    settings = Settings(data_dir=tmp_path, streams_file=tmp_path / "streams.json")
    component = IntakeComponent(settings, CollectorRegistry(),
                                clock=lambda: "2026-11-22T10:11:13.000Z")
    with TestClient(create_app(settings, [component])) as client:
        response = client.post("/v1/events", content=orjson.dumps(events), headers=HEADERS)
    with sqlite3.connect(tmp_path / "events.sqlite") as db:
        rows = db.execute("SELECT body FROM events ORDER BY seq").fetchall()
    return response.status_code, [orjson.loads(row[0]) for row in rows]


def expected(sent: dict[str, Any], stored: dict[str, Any], keep_user_agent: bool) -> Any:
    """``sent`` with the documented enrichment and stripping applied (ids copied from storage)."""
    want = copy.deepcopy(sent)
    want["meta"].update(dt="2026-11-22T10:11:13.000Z", id=stored["meta"]["id"],
                        request_id="req-contract-1")
    if keep_user_agent:
        want["http"] = {"request_headers": {"user-agent": UA}}
    else:
        want["agent"].pop("ua_string", None)
    return want


@pytest.mark.parametrize("keep_user_agent", [False, True])
def test_what_current_clients_send_is_stored_as_sent(
        refdata: Path, tmp_path: Path, keep_user_agent: bool) -> None:
    sent = [metrics_platform_event(refdata), kitchen_js_exposure(),
            kitchen_php_exposure()]
    status, stored = post_and_read(tmp_path, sent, keep_user_agent)
    assert status == 201
    assert len(stored) == 3
    for event, body in zip(sent, stored, strict=True):
        assert body == expected(event, body, keep_user_agent)
    assert (UA.encode() in orjson.dumps(stored)) is keep_user_agent


def test_the_fixture_with_its_harness_field_is_refused_as_a_closed_schema_refuses_it(
        refdata: Path, tmp_path: Path) -> None:
    event = metrics_platform_event(refdata)
    event["test"] = "consistency"
    status, stored = post_and_read(tmp_path, [event])
    assert status == 400
    [error] = stored
    assert error["meta"]["stream"] == "splitlab.error.validation"
    assert "'test' was unexpected" in error["message"]
