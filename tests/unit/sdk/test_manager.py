"""The per-request manager: enrollment by sampling unit, overrides, edge header, identity
updates mid-request, handles, events and their shape."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime

import pytest

from splitlab.sdk import Performer

from .sdk_helpers import Clock, make, oracle, row

GROUPS = ["control", "treatment"]
ROWS = [
    row("signup-flow-test", "mw-user"),
    row("anon-banner-test", "edge-unique"),
    row("session-search-test", "session"),
    row("leveling-up-notice", "mw-user", stream_name="mediawiki.product_metrics.growth",
        schema_id="/analytics/product_metrics/web/base/1.4.0"),
]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_each_unit_enrolls_on_its_own_experiments() -> None:
    client, _, _ = make(ROWS)
    only_anon = client.manager(anonymous_id="anon-abc")
    assert only_anon.get_experiment("anon-banner-test").get_assigned_group() == \
        oracle("anon-abc", "anon-banner-test", GROUPS, 1.0)
    assert only_anon.get_experiment("signup-flow-test").reason == "not_sampled"
    assert only_anon.get_experiment("signup-flow-test").resolution.detail == \
        "no mw-user identifier"
    everyone = client.manager(user_id=42, anonymous_id="anon-abc", session_id="s-1")
    assert everyone.get_experiment("signup-flow-test").get_assigned_group() == \
        oracle(42, "signup-flow-test", GROUPS, 1.0)
    assert everyone.get_experiment("session-search-test").get_assigned_group() == \
        oracle("s-1", "session-search-test", GROUPS, 1.0)
    assert everyone.get_experiment("anon-banner-test").subject_id == \
        sha("anon-abc" + "anon-banner-test")


def test_account_creation_enrolls_the_new_user_mid_request() -> None:
    client, _, sender = make(ROWS)
    manager = client.manager(anonymous_id="anon-new")
    assert not manager.get_experiment("signup-flow-test").is_enrolled
    manager.update_user(1234)
    handle = manager.get_experiment("signup-flow-test")
    assert handle.get_assigned_group() == client.get_assignment_for_user(1234, "signup-flow-test")
    assert handle.is_assigned_group(*GROUPS)
    assert manager.log_enrollment("signup-flow-test", "account_creation") is True
    assert manager.log_enrollment("signup-flow-test", "account_creation") is False  # once
    (event,) = sender.events
    assert event["action"] == "experiment_enrollment"
    assert event["action_source"] == "account_creation"
    assert event["$schema"] == "/analytics/product_metrics/web/base/2.1.0"
    assert event["meta"] == {"stream": "product_metrics.experiment_enrollment"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["dt"])
    assert event["performer"] == {"id": 1234, "is_logged_in": True, "is_temp": False}
    experiment = event["experiment"]
    assert experiment["enrolled"] == "signup-flow-test"
    assert experiment["assigned"] == handle.get_assigned_group()
    assert experiment["subject_id"] == sha("1234signup-flow-test")
    assert experiment["sampling_unit"] == "mw-user"
    assert experiment["coordinator"] == "default"
    assert re.fullmatch(r"[0-9a-f]{16}", experiment["exposure_version"])
    assert (experiment["phase_index"], experiment["version"]) == (0, 1)
    assert client.metrics.value("splitlab_sdk_enrollments_total", {
        "experiment": "signup-flow-test", "group": experiment["assigned"],
        "source": "account_creation"}) == 1


def test_a_job_later_gets_the_same_group_and_tags_its_event() -> None:
    clock = Clock(datetime(2026, 6, 1, tzinfo=UTC))
    client, _, sender = make(ROWS, clock)
    at_signup = client.manager()
    at_signup.update_user(77)
    group = at_signup.get_experiment("leveling-up-notice").get_assigned_group()
    clock.now = datetime(2026, 6, 3, tzinfo=UTC)  # 48 hours later
    assert client.get_assignment_for_user(77, "leveling-up-notice") == group
    job = client.manager(user_id=77)
    job.get_experiment("leveling-up-notice").send(
        "notification_sent", {"action_source": "job", "action_context": "leveling_up"})
    (event,) = sender.events
    assert event["experiment"]["assigned"] == group
    assert event["meta"]["stream"] == "mediawiki.product_metrics.growth"
    assert event["$schema"] == "/analytics/product_metrics/web/base/1.4.0"
    assert event["dt"].startswith("2026-06-03T")
    assert (event["action_source"], event["action_context"]) == ("job", "leveling_up")


def test_anonymous_ids_never_reach_events() -> None:
    client, _, sender = make(ROWS)
    manager = client.manager(anonymous_id="secret-cookie-value-123", session_id="sess-secret-9")
    for name in ("anon-banner-test", "session-search-test"):
        handle = manager.get_experiment(name)
        handle.send_exposure()
        handle.send("click")
        manager.log_enrollment(name, "page_view")
    assert len(sender.events) == 6
    text = json.dumps(sender.events)
    assert "secret-cookie-value-123" not in text and "sess-secret-9" not in text
    assert all("id" not in e["performer"] for e in sender.events)


def test_exposure_is_sent_once_per_request() -> None:
    client, _, sender = make(ROWS)
    for _ in range(2):
        manager = client.manager(user_id=5)
        handle = manager.get_experiment("signup-flow-test")
        handle.send_exposure()
        handle.send_exposure()
        manager.get_experiment("signup-flow-test").send_exposure()
    assert [e["action"] for e in sender.events] == ["experiment_exposure"] * 2
    assert sender.events[0]["meta"]["stream"] == "product_metrics.web_base"


def test_overrides_force_the_group_and_send_nothing() -> None:
    client, _, sender = make(ROWS)
    natural = client.get_assignment_for_user(9, "signup-flow-test")
    forced = "treatment" if natural == "control" else "control"
    manager = client.manager(user_id=9, query_string=f"title=X&mpo=signup-flow-test:{forced}")
    handle = manager.get_experiment("signup-flow-test")
    assert handle.get_assigned_group() == forced and handle.reason == "override"
    handle.send_exposure()
    handle.send("click")
    assert manager.log_enrollment("signup-flow-test", "page_view") is False
    assert sender.events == []
    result = manager.enrollment_result()
    assert result.overrides == {"signup-flow-test": forced}
    assert "signup-flow-test" not in result.subject_ids


@pytest.mark.parametrize("query", [
    "mpo=signup-flow-test",  # no group
    "mpo=signup-flow-test:no-such-group",
    "mpo=unknown-experiment-x:control",
])
def test_bad_overrides_are_ignored(query: str) -> None:
    client, _, _ = make(ROWS)
    manager = client.manager(user_id=9, query_string=query)
    handle = manager.get_experiment("signup-flow-test")
    assert handle.reason == "assigned"
    assert handle.get_assigned_group() == client.get_assignment_for_user(9, "signup-flow-test")


def test_edge_enrollments_header_is_authoritative_for_edge_units() -> None:
    client, _, sender = make(ROWS)
    computed = oracle("anon-1", "anon-banner-test", GROUPS, 1.0)
    other = "treatment" if computed == "control" else "control"
    headers = {"X-Experiment-Enrollments": f"anon-banner-test={other};"}
    manager = client.manager(anonymous_id="anon-1", headers=headers)
    handle = manager.get_experiment("anon-banner-test")
    assert handle.get_assigned_group() == other
    handle.send_exposure()
    assert sender.events[0]["experiment"]["subject_id"] == sha("anon-1anon-banner-test")
    assert client.metrics.value("splitlab_sdk_exposures_total", {
        "experiment": "anon-banner-test", "group": other, "source": "edge"}) == 1
    without_id = client.manager(headers=headers).get_experiment("anon-banner-test")
    assert (without_id.get_assigned_group(), without_id.reason) == (other, "assigned")
    assert without_id.subject_id is None and without_id.enrollment is None


def test_a_malformed_header_is_ignored_entirely() -> None:
    client, _, _ = make(ROWS)
    bad = {"x-experiment-enrollments": "anon-banner-test=treatment;bad entry"}
    manager = client.manager(anonymous_id="anon-1", headers=bad)
    assert manager.get_experiment("anon-banner-test").get_assigned_group() == \
        oracle("anon-1", "anon-banner-test", GROUPS, 1.0)
    assert client.metrics.value("splitlab_sdk_ignored_input_total", {"source": "header"}) == 1


def test_unknown_and_unenrolled_experiments_are_null_handles() -> None:
    client, _, sender = make([*ROWS, row("tiny-sample-test", rate=0.0)])
    manager = client.manager(user_id=1)
    for name, reason in (("never-configured", "unknown_experiment"),
                         ("tiny-sample-test", "not_sampled")):
        handle = manager.get_experiment(name)
        assert handle.reason == reason
        assert handle.get_assigned_group() is None
        assert handle.is_assigned_group("control") is False
        handle.send("click")
        handle.send_exposure()
        assert manager.log_enrollment(name, "page_view") is False
    assert sender.events == []
    assert client.metrics.value("splitlab_sdk_unknown_experiments_total",
                                {"experiment": "never-configured", "source": "lookup"}) == 2


def test_interaction_data_cannot_replace_sdk_fields() -> None:
    client, _, sender = make(ROWS)
    handle = client.manager(user_id=3).get_experiment("signup-flow-test")
    handle.send("click", {"action": "spoofed", "action_subtype": "button",
                          "experiment": {"assigned": "x"}},
                {"page": {"namespace_id": 0}, "meta": {"stream": "elsewhere"}})
    (event,) = sender.events
    assert event["action"] == "click" and event["action_subtype"] == "button"
    assert event["page"] == {"namespace_id": 0}
    assert event["meta"]["stream"] == "product_metrics.web_base"
    assert event["experiment"]["assigned"] in GROUPS


def test_account_kinds_can_be_excluded_from_enrollment_events() -> None:
    client, _, sender = make(ROWS)
    manager = client.manager()
    manager.update_user(55, performer=Performer(is_bot=True, is_temp=True))
    assert manager.log_enrollment("signup-flow-test", "account_creation",
                                  exclude_bots=True) is False
    assert manager.log_enrollment("signup-flow-test", "account_creation",
                                  exclude_automatic=True) is True
    assert sender.events[0]["performer"]["is_temp"] is True


def test_changing_user_replaces_user_enrollments() -> None:
    client, _, _ = make([row("half-sample-test", rate=0.5)])
    users = [u for u in range(100) if oracle(u, "half-sample-test", GROUPS, 0.5) is None]
    enrolled = [u for u in range(100) if oracle(u, "half-sample-test", GROUPS, 0.5)]
    manager = client.manager(user_id=enrolled[0])
    assert manager.get_experiment("half-sample-test").is_enrolled
    manager.update_user(users[0])
    assert manager.get_experiment("half-sample-test").reason == "not_sampled"


def test_response_header_and_decoration_result() -> None:
    client, _, _ = make(ROWS)
    manager = client.manager(user_id=8, anonymous_id="anon-8",
                             query_string="mpo=session-search-test:treatment")
    result = manager.enrollment_result()
    assert set(result.enrolled) == {"signup-flow-test", "anon-banner-test",
                                    "session-search-test", "leveling-up-notice"}
    header = manager.enrollments_header()
    assert "session-search-test=treatment;" in header
    expected = oracle(8, "signup-flow-test", GROUPS, 1.0)
    assert f"signup-flow-test={expected};" in header


def test_misuse_raises_type_error() -> None:
    client, _, _ = make(ROWS)
    manager = client.manager()
    with pytest.raises(TypeError):
        manager.get_experiment(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        manager.update_identifier("cookie", "x")
    with pytest.raises(TypeError):
        manager.update_identifier("session", 5)
    with pytest.raises(TypeError):
        client.manager(query_string=b"mpo=x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        manager.log_enrollment("signup-flow-test", "")
    with pytest.raises(TypeError):
        manager.get_experiment("signup-flow-test").send("click", ["not", "a", "mapping"])  # type: ignore[arg-type]


def test_enrollment_events_carry_the_units_other_assignments() -> None:
    client, _, sender = make(ROWS)
    headers = {"X-Experiment-Enrollments": "anon-banner-test=treatment;"}
    manager = client.manager(user_id=5, anonymous_id="anon-5", headers=headers,
                             query_string="mpo=session-search-test:control")
    assert manager.log_enrollment("signup-flow-test", "page_view") is True
    (event,) = sender.events
    assert event["experiment"]["other_assigned"] == {
        "anon-banner-test": "treatment",  # edge enrollments count; overrides do not
        "leveling-up-notice": oracle(5, "leveling-up-notice", GROUPS, 1.0)}
    manager.get_experiment("signup-flow-test").send_exposure()
    assert "other_assigned" not in sender.events[1]["experiment"]


def test_targeting_sees_the_request_attributes() -> None:
    targeted = row("mobile-editors-test", algorithm="sl-v2", sample_rate=None,
                   traffic_split={"default": {"control": 50, "treatment": 50}},
                   targeting={"platform": "mobile", "edit_count": {"$gte": 10},
                              "site": "dewiki"})
    del targeted["sample_rate"]
    client, _, _ = make([targeted], site="dewiki")
    manager = client.manager(user_id=3, attributes={"platform": "mobile", "edit_count": 2})
    assert manager.get_experiment("mobile-editors-test").reason == "targeting"
    assert manager.attributes["site"] == "dewiki" and manager.attributes["is_logged_in"]
    manager.update_attributes({"edit_count": 12})
    handle = manager.get_experiment("mobile-editors-test")
    assert (handle.reason, handle.get_assigned_group()) == (
        "assigned", oracle(3, "mobile-editors-test", GROUPS, 1.0))
    with pytest.raises(TypeError):
        manager.update_attributes([("edit_count", 1)])  # type: ignore[arg-type]


def test_request_attributes_have_standard_names() -> None:
    from splitlab.sdk import RequestAttributes

    registered = datetime(2020, 5, 1, 12, tzinfo=UTC)
    attributes = RequestAttributes(skin="vector-2022", platform="mobile", is_logged_in=True,
                                   edit_count=0, registration_date=registered,
                                   extra={"skin": "ignored", "beta": True})
    assert attributes.as_dict() == {"skin": "vector-2022", "platform": "mobile",
                                    "is_logged_in": True, "edit_count": 0,
                                    "registration_date": "2020-05-01T12:00:00Z", "beta": True}
    client, _, _ = make(ROWS, site="enwiki")
    manager = client.manager(attributes=attributes)
    assert manager.attributes["site"] == "enwiki" and manager.attributes["edit_count"] == 0
    with pytest.raises(TypeError):
        RequestAttributes(registration_date=datetime(2020, 1, 1)).as_dict()
