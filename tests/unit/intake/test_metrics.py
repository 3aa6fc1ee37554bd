"""The intake's experiment counter: exposures taken before a batch is stored, counted after."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from splitlab.intake.metrics import IntakeMetrics
from splitlab.intake.pipeline import EventStatus


def exposure(experiment: str, group: str, action: str = "experiment_exposure") -> dict[str, object]:
    return {"action": action, "experiment": {"enrolled": experiment, "assigned": group}}


def count(registry: CollectorRegistry, experiment: str, group: str) -> float | None:
    return registry.get_sample_value("splitlab_intake_experiment_events_total", {
        "experiment": experiment, "group": group, "action": "experiment_exposure"})


def test_only_stored_exposures_of_running_experiments_are_counted() -> None:
    registry = CollectorRegistry()
    metrics = IntakeMetrics(registry)
    running = {"x": frozenset({"a", "b"})}
    events = [exposure("x", "a"), exposure("x", "a"), exposure("x", "b"), exposure("y", "a"),
              exposure("x", "c"), {"action": "click", "experiment": {"enrolled": "x",
                                                                      "assigned": "a"}}, "text"]
    found = metrics.exposures(events, running)
    assert [position for position, _ in found] == [0, 1, 2]
    statuses = [EventStatus("success", None), EventStatus("error", events[1]),
                *[EventStatus("success", None)] * 5]
    metrics.record_experiments(found, statuses, running)
    assert (count(registry, "x", "a"), count(registry, "x", "b")) == (1.0, 1.0)
    assert metrics.exposures(events, {}) == []
    metrics.record_experiments([], statuses, {})  # x no longer runs: its series are dropped
    assert count(registry, "x", "a") is None
