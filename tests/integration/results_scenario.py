"""Traffic with known units per group for the continuous-results tests, and how they check it.

Units ``1..UNITS`` of a ``mw-user`` experiment are assigned with the real ``tk-v1`` core. Every
fourth unit logs in the 1.3.0 shape (plural fragment, the unit in ``performer.id``), the others
in 2.1.0; 7% of the treatment group's units lose every enrollment (a logging bug); one unit also
logs an enrollment in the other group; some events are sent twice with the same ``meta.id``. The
expected units per group are counted here from what was sent — not from splitlab's answer.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from splitlab.core.assignment import assign
from splitlab.core.model import Experiment

EXPERIMENT = "results-e2e-signup"
GROUPS = ("control", "treatment")
UNITS = 12_000
LOST_SHARE = 0.07
MIXED_UNIT = 7
ROW = {"name": EXPERIMENT, "groups": list(GROUPS), "sample_rate": {"default": 1},
       "user_identifier_type": "mw-user"}
AGENT = {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"}
WEB_13 = "/analytics/product_metrics/web/base/1.3.0"
WEB_21 = "/analytics/product_metrics/web/base/2.1.0"


@dataclass
class Traffic:
    """The events to send (each with its ``meta.id``) and the units per group they make."""

    events: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GROUPS, 0))
    exposures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GROUPS, 0))
    mixed: int = 0


def event(user: int, group: str, subject: str, plural: bool, action: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "$schema": WEB_13 if plural else WEB_21, "action": action, "agent": AGENT,
        "meta": {"stream": "product_metrics.web_base", "domain": "en.wikipedia.org",
                 "id": str(uuid.uuid4())},
        "dt": "2026-11-22T10:00:00.000Z", "action_source": "page_view",
        "mediawiki": {"database": "enwiki"}, "performer": {"id": user, "is_logged_in": True},
    }
    if plural:
        body["experiments"] = {"enrolled": [EXPERIMENT], "assigned": {EXPERIMENT: group}}
    else:
        body["experiment"] = {"enrolled": EXPERIMENT, "assigned": group, "subject_id": subject,
                              "sampling_unit": "mw-user", "coordinator": "default"}
    return body


def traffic(seed: int = 1, units: int = UNITS) -> Traffic:
    """The scenario's events (shuffled) and the truth about them."""
    draws = random.Random(seed)
    experiment = Experiment.from_config(ROW)
    plan = Traffic()
    for user in range(1, units + 1):
        assigned = assign(user, experiment)
        group = assigned.group
        assert group is not None
        plural = user % 4 == 0
        if group == "treatment" and draws.random() < LOST_SHARE:
            continue  # every enrollment of this unit was lost
        enrollment = event(user, group, assigned.subject_id, plural, "experiment_enrollment")
        plan.events.append(enrollment)
        plan.events.append(event(user, group, assigned.subject_id, plural, "experiment_exposure"))
        plan.exposures[group] += 1
        if user % 10 == 0:
            plan.events.append(enrollment)  # re-sent with the same meta.id
        if user == MIXED_UNIT:
            other = GROUPS[1 - GROUPS.index(group)]
            plan.events.append(event(user, other, assigned.subject_id, False,
                                     "experiment_enrollment"))
            plan.mixed += 1
            continue
        plan.expected[group] += 1
    draws.shuffle(plan.events)
    return plan


def post_all(url: str, events: list[dict[str, Any]], batch: int = 500) -> None:
    """POST the events to the intake in batches; every one must be accepted."""
    with httpx.Client(base_url=url, timeout=30) as client:
        for start in range(0, len(events), batch):
            answer = client.post("/v1/events", json=events[start:start + batch])
            assert answer.status_code == 201, answer.text


def wait_for_results(url: str, expected: dict[str, int], timeout: float = 120
                     ) -> dict[str, Any]:
    """Poll the results API until the latest run counts ``expected`` units; return it."""
    deadline = time.monotonic() + timeout
    latest: Any = None
    while time.monotonic() < deadline:
        answer = httpx.get(f"{url}/api/v1/experiments/{EXPERIMENT}/results", timeout=10)
        if answer.status_code == 200:
            latest = answer.json()
            if latest["groups"] == expected:
                return dict(latest)
        time.sleep(1)
    raise AssertionError(f"results never reached {expected}; last: {latest}")


def gauge(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text, or ``None`` when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        found = series[len(name):]
        if found.startswith("{"):
            pairs = ",".join(sorted(found.strip("{}").split(",")))
            if pairs == wanted:
                return float(value)
        elif not labels and found == "":
            return float(value)
    return None
