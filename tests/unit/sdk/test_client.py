"""The client's side-effect-free coordinator and its config handling.

Expected groups come from a second implementation of tk-v1 written here from DESIGN.md's
formula (not from the core), so both would have to be wrong the same way to pass.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from splitlab.core.model import Experiment
from splitlab.sdk import (
    Client,
    ConfigSnapshot,
    HttpEventSender,
    MemoryConfigSource,
    MemoryEventSender,
    SenderOptions,
)

from .sdk_helpers import Clock, IntakeStub, make, oracle, row


def test_get_assignment_matches_the_published_formula() -> None:
    client, _, sender = make([row("checkout-button-2026", rate=0.5)])
    groups = ["control", "treatment"]
    answers = [client.get_assignment_for_user(uid, "checkout-button-2026") for uid in range(2000)]
    assert answers == [oracle(uid, "checkout-button-2026", groups, 0.5) for uid in range(2000)]
    assert {a for a in answers} == {None, "control", "treatment"}
    assert sender.events == []  # side-effect free


def test_site_rates_apply() -> None:
    rates = {"default": 0.0, "1": ["enwiki"]}
    on_en, _, _ = make([row("sitewide-rates-test", sample_rate=rates)], site="enwiki")
    on_de, _, _ = make([row("sitewide-rates-test", sample_rate=rates)], site="dewiki")
    assert on_en.get_assignment_for_user(7, "sitewide-rates-test") in {"control", "treatment"}
    assert on_de.get_assignment_for_user(7, "sitewide-rates-test") is None


def test_unknown_and_inactive_experiments_answer_none() -> None:
    clock = Clock()
    client, _, _ = make([row("welcome-email-test")], clock)
    assert client.get_assignment_for_user(1, "no-such-experiment") is None
    assert client.metrics.value("splitlab_sdk_unknown_experiments_total",
                                {"experiment": "no-such-experiment", "source": "client"}) == 1
    assert client.get_assignment_for_user(1, "welcome-email-test") is not None
    clock.now = datetime(2027, 1, 1, tzinfo=UTC)  # the end itself is in (Test Kitchen's window)
    assert client.get_assignment_for_user(1, "welcome-email-test") is not None
    clock.now = datetime(2027, 1, 1, tzinfo=UTC) + timedelta(microseconds=1)
    assert client.get_assignment_for_user(1, "welcome-email-test") is None
    clock.now = datetime(2025, 12, 31, tzinfo=UTC)
    assert client.get_assignment_for_user(1, "welcome-email-test") is None


def test_bulk_form_agrees_with_single_calls() -> None:
    client, _, _ = make([row("bulk-form-check", rate=0.3)])
    users: list[int | str] = [*range(500), "alice", "bob"]
    bulk = client.get_assignments_for_users(users, "bulk-form-check")
    assert bulk == [client.get_assignment_for_user(u, "bulk-form-check") for u in users]
    assert client.get_assignments_for_users([1, 2], "unknown-experiment") == [None, None]


def test_the_client_site_is_the_site_attribute_of_targeting() -> None:
    """``resolve`` and ``get_assignment_for_user`` give a condition the client's site as
    ``site``, as the manager does (and OFREP, whose context ``site`` is both the split's site and
    an attribute): one client, one unit, one answer. The caller's own ``site`` attribute wins."""
    name = "site-targeted-exp"
    targeted = {"name": name, "groups": ["control", "treatment"], "algorithm": "sl-v2",
                "traffic_split": {"default": {"control": 50, "treatment": 50}},
                "targeting": {"site": "dewiki"}, "user_identifier_type": "mw-user"}
    on_de, _, _ = make([targeted], site="dewiki")
    on_en, _, _ = make([targeted], site="enwiki")
    for uid in range(40):
        group = oracle(uid, name, ["control", "treatment"], 1.0)
        found = on_de.resolve(uid, name)
        assert (found.group, found.reason) == (group, "assigned"), uid
        assert on_de.get_assignment_for_user(uid, name) == group
        assert on_de.manager(user_id=uid).get_experiment(name).get_assigned_group() == group
        assert on_en.resolve(uid, name).reason == "targeting"
        assert on_en.resolve(uid, name, {"site": "dewiki"}).group == group
        assert on_de.resolve(uid, name, {"site": "enwiki"}).reason == "targeting"


def test_misuse_raises_type_error() -> None:
    client, _, _ = make([row("misuse-check-test")])
    with pytest.raises(TypeError):
        client.get_assignment_for_user(1.5, "misuse-check-test")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.get_assignment_for_user(1, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.get_assignments_for_users([object()], "unknown-experiment")  # type: ignore[list-item]
    with pytest.raises(TypeError):
        Client(object(), MemoryEventSender())  # type: ignore[arg-type]


class BrokenSource:
    """A source that breaks its contract (it raises); the client must survive it."""

    def __init__(self) -> None:
        experiments = (Experiment.from_config(row("broken-source-test")),)
        self.snapshot = ConfigSnapshot(experiments, "v1")
        self.broken = False

    def load(self) -> ConfigSnapshot:
        if self.broken:
            raise RuntimeError("config backend down")
        return self.snapshot


def test_a_failing_source_keeps_the_last_good_config() -> None:
    source = BrokenSource()
    client = Client(source, MemoryEventSender(), clock=Clock())
    first = client.get_assignment_for_user(3, "broken-source-test")
    source.broken = True
    assert client.get_assignment_for_user(3, "broken-source-test") == first
    assert client.manager(user_id=3).get_experiment("broken-source-test").is_enrolled
    assert client.metrics.value("splitlab_sdk_evaluation_errors_total",
                                {"reason": "config_source"}) == 2


def test_config_updates_are_seen_and_bad_updates_refused() -> None:
    client, source, _ = make([row("config-update-a")])
    assert client.get_assignment_for_user(1, "config-update-b") is None
    assert source.set_rows([row("config-update-a"), row("config-update-b")]) is True
    assert client.get_assignment_for_user(1, "config-update-b") is not None
    assert source.set_rows([{"name": "broken"}]) is False
    assert client.get_assignment_for_user(1, "config-update-b") is not None


def test_active_window_cache_follows_the_clock() -> None:
    clock = Clock(datetime(2026, 3, 1, tzinfo=UTC))
    client, _, _ = make([row("late-start-test", start="2026-04-01T00:00:00Z")], clock)
    assert not client.manager(user_id=5).get_experiment("late-start-test").is_enrolled
    clock.now += timedelta(days=31)
    assert client.manager(user_id=5).get_experiment("late-start-test").is_enrolled
    clock.now -= timedelta(days=31)
    assert not client.manager(user_id=5).get_experiment("late-start-test").is_enrolled


def test_concurrent_use_during_config_updates() -> None:
    groups = ["control", "treatment"]
    client, source, _ = make([row("concurrency-test", rate=1.0)])
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for uid in range(300):
                group = client.manager(user_id=uid).get_experiment("concurrency-test") \
                    .get_assigned_group()
                assert group in {None, oracle(uid, "concurrency-test", groups, 1.0)}
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(50):
        source.set_rows([row("concurrency-test", rate=1.0 if i % 2 else 0.5)])
    for thread in threads:
        thread.join()
    assert errors == []


def test_context_manager_delivers_and_closes(intake: IntakeStub) -> None:
    sender = HttpEventSender(intake.url, SenderOptions(backoff=0.01))
    with Client(MemoryConfigSource([row("context-close-test")]), sender, clock=Clock()) as client:
        client.manager(user_id=1).get_experiment("context-close-test").send("inside")
    assert [e["action"] for e in intake.events] == ["inside"]  # delivered by close()
    client.manager(user_id=1).get_experiment("context-close-test").send("after")
    assert sender.metrics.value("splitlab_sdk_events_dropped_total", {"reason": "closed"}) == 1


def test_test_kitchen_published_cases_through_the_sdk(refdata: Path) -> None:
    cases = json.loads((refdata / "testkitchen-upstream-fixtures.json").read_text())["cases"]
    assert cases
    for case in cases:
        experiment_row = row(case["experiment"], "mw-user", rate=float(case["sample_rate"]),
                             groups=case["groups"])
        client, _, _ = make([experiment_row])
        assert client.get_assignment_for_user(case["identifier"], case["experiment"]) == \
            case["group"], case["id"]
        handle = client.manager(user_id=case["identifier"]).get_experiment(case["experiment"])
        assert handle.get_assigned_group() == case["group"], case["id"]
        if case["in_sample"]:
            assert handle.subject_id == case["subject_id"], case["id"]
