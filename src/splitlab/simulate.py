"""Simulated traffic with a known true effect, sent through the SDK like a real application's.

Each simulated unit visits once: the SDK enrolls it, sends its ``experiment_enrollment``
(``action_source`` ``simulation``) and ``experiment_exposure`` events, and the unit converts
(an event with the scenario's ``action``) with probability ``base_rate`` in the first group
(control) and ``base_rate + lift`` in every other group. The draws come from a seeded generator,
so a scenario always produces the same events apart from their timestamps; the analysis side
can check that it recovers ``lift``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from splitlab.sdk.client import Client
from splitlab.sdk.manager import ExperimentManager

SOURCE = "simulation"


@dataclass(frozen=True, slots=True)
class Scenario:
    """What to simulate: ``users`` units in ``experiment``; conversion probabilities
    ``base_rate`` (control) and ``base_rate + lift`` (other groups); the seed of the draws."""

    experiment: str
    users: int
    base_rate: float = 0.10
    lift: float = 0.02
    seed: int = 0
    action: str = "conversion"

    def __post_init__(self) -> None:
        if self.users < 0:
            raise ValueError(f"users must be at least 0, got {self.users}")
        for rate in (self.base_rate, self.base_rate + self.lift):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"conversion rates must lie in [0, 1], got {rate}")


@dataclass(slots=True)
class GroupTally:
    """Units enrolled in one group, how many converted, and the true conversion rate."""

    true_rate: float
    units: int = 0
    conversions: int = 0


@dataclass(slots=True)
class Summary:
    """What a simulation sent, per group (in the experiment's group order)."""

    groups: dict[str, GroupTally] = field(default_factory=dict)
    not_enrolled: int = 0


def simulate(client: Client, scenario: Scenario) -> Summary:
    """Run ``scenario`` through ``client`` (whose sender receives the events). Raises
    ``ValueError`` when the experiment is unknown or not active now."""
    experiment = client.experiment(scenario.experiment)
    if experiment is None:
        raise ValueError(f"no experiment named {scenario.experiment!r} in the config")
    if not experiment.is_active(client.now()):
        raise ValueError(f"experiment {experiment.name!r} is not active now")
    control = experiment.groups[0]
    summary = Summary({g: GroupTally(_true_rate(scenario, g == control))
                       for g in experiment.groups})
    draws = random.Random(scenario.seed)
    unit = experiment.user_identifier_type
    for number in range(1, scenario.users + 1):
        manager = _manager_for(client, unit, number, scenario.seed)
        handle = manager.get_experiment(experiment.name)
        group = handle.get_assigned_group()
        converted = draws.random()  # drawn for every unit, so the sequence does not depend
        if group is None:           # on who is enrolled
            summary.not_enrolled += 1
            continue
        manager.log_enrollment(experiment.name, SOURCE)
        handle.send_exposure()
        tally = summary.groups[group]
        tally.units += 1
        if converted < tally.true_rate:
            tally.conversions += 1
            handle.send(scenario.action, {"action_source": SOURCE})
    return summary


def _true_rate(scenario: Scenario, is_control: bool) -> float:
    return scenario.base_rate if is_control else scenario.base_rate + scenario.lift


def _manager_for(client: Client, unit: str, number: int, seed: int) -> ExperimentManager:
    if unit == "mw-user":
        return client.manager(user_id=number)
    if unit == "session":
        return client.manager(session_id=f"sim-session-{seed}-{number}")
    return client.manager(anonymous_id=f"sim-anon-{seed}-{number}")
