"""The one evaluation result: a unit's group in an experiment, and why.

Every evaluator (this core, the SDK's manager and handles, the OpenFeature provider, OFREP, the
browser SDK) answers with the same :class:`Resolution`, so that one experiment evaluated for one
unit reads the same everywhere; adapters map :class:`Reason` to their own vocabulary in one
place (:mod:`splitlab.sdk.evaluation`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from hashlib import sha256
from typing import Any, NamedTuple

from splitlab.core.assignment import (
    ACCELERATED,
    Assignment,
    Identifier,
    identifier_bytes,
    layout_for,
    pure_slot,
    slot_assign,
)
from splitlab.core.condition_program import native_condition
from splitlab.core.model import Experiment

if ACCELERATED:  # the optional C accelerator; pure_resolve is the reference
    from splitlab.core import _tkv1  # type: ignore[attr-defined]


class Reason(StrEnum):
    """Why a unit has the group it has (or none)."""

    ASSIGNED = "assigned"
    """In sample: the algorithm gave the unit its group."""
    NOT_SAMPLED = "not_sampled"
    """Out of sample on this site (or no identifier of the experiment's unit is known)."""
    OVERRIDE = "override"
    """QA forced the group (``mpo``); no events are sent."""
    HOLDOUT = "holdout"
    """The unit is in a holdout the experiment lists."""
    LAYER = "layer"
    """The unit's layer bin is outside the experiment's range of its layer."""
    TARGETING = "targeting"
    """The unit's attributes do not satisfy the experiment's targeting condition."""
    INACTIVE = "inactive"
    """The experiment is outside its start/end window."""
    UNKNOWN_EXPERIMENT = "unknown_experiment"
    """No experiment of that name is configured."""
    ERROR = "error"
    """Evaluation failed; the unit is treated as not enrolled."""


class Resolution(NamedTuple):
    """A unit's group in one experiment (``None`` unless assigned or overridden) and the
    reason. ``subject_id`` is the unit's pseudonym in the experiment (``None`` when no
    identifier or no experiment is known); ``detail`` says more for logs and debuggers.
    (An immutable tuple, like :class:`~splitlab.core.assignment.Assignment`: it is built on
    every evaluation.)"""

    group: str | None
    reason: Reason
    subject_id: str | None = None
    experiment: Experiment | None = None
    detail: str = ""

    @property
    def enrolled(self) -> bool:
        """Whether the unit is in the experiment's sample with a group (overrides are not)."""
        return self.reason is Reason.ASSIGNED and self.group is not None


_GATES = {"holdout": Reason.HOLDOUT, "layer": Reason.LAYER, "targeting": Reason.TARGETING}
_PLAN_REASONS = (Reason.ASSIGNED, Reason.NOT_SAMPLED, Reason.HOLDOUT, Reason.LAYER,
                 Reason.TARGETING)
"""The reasons a plan answers with, in the order ``_tkv1_plan.c`` indexes them."""


def _before_gates(identifier: Identifier | None, experiment: Experiment | None,
                  now: datetime | None, override: str | None) -> Resolution | None:
    """The answer when it comes before the gates (unknown experiment, override, inactive, no
    identifier), else ``None``."""
    if experiment is None:
        return Resolution(None, Reason.UNKNOWN_EXPERIMENT)
    if override is not None:
        if override not in experiment.groups:
            raise ValueError(f"{experiment.name!r} has no group {override!r}")
        return Resolution(override, Reason.OVERRIDE, None, experiment)
    if now is not None and not experiment.is_active(now):
        return Resolution(None, Reason.INACTIVE, None, experiment)
    if identifier is None:
        detail = f"no {experiment.user_identifier_type} identifier"
        return Resolution(None, Reason.NOT_SAMPLED, None, experiment, detail)
    return None


def pure_resolve(
    identifier: Identifier | None,
    experiment: Experiment | None,
    site: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
    override: str | None = None,
) -> Resolution:
    """Evaluate ``experiment`` for the unit ``identifier`` on ``site`` (the reference
    implementation of :func:`resolve`, in Python).

    Precedence: an unknown experiment (``None``), then an ``override`` group, then the
    experiment's window at ``now`` (not checked when ``now`` is ``None``), then a missing
    identifier, then the ``sl-v2`` gates in the order holdout, layer, targeting (on
    ``attributes``), then the slot. An override must be one of the experiment's groups
    (``ValueError`` otherwise); a bad identifier type raises ``TypeError`` as :func:`assign`
    does.
    """
    early = _before_gates(identifier, experiment, now, override)
    if early is not None:
        return early
    assert identifier is not None and experiment is not None  # else answered before the gates
    return _gates_and_slot(identifier, experiment, site, attributes, True, pure_slot)


def resolve_except_targeting(
    identifier: Identifier, experiment: Experiment, site: str | None = None
) -> Resolution:
    """:func:`resolve` of an active experiment for a known unit with every gate but targeting
    (holdout, layer, then the slot): the answer the unit gets if its attributes satisfy the
    experiment's condition, for a caller that decides the condition elsewhere (the client
    payload leaves it to the browser when the server does not know every attribute it reads).
    The reason is never ``targeting``; the experiment's window is not checked."""
    return _gates_and_slot(identifier, experiment, site, None, False, slot_assign)


def _gates_and_slot(
    identifier: Identifier, experiment: Experiment, site: str | None,
    attributes: Mapping[str, Any] | None, targeted: bool,
    slot: Callable[[Identifier, Experiment, str | None], Assignment],
) -> Resolution:
    v2 = experiment.slv2
    if v2 is not None and v2.gated:
        raw = identifier_bytes(identifier)
        gate = v2.exclusion(raw, attributes, targeted)
        if gate is not None:
            subject = sha256(raw + experiment.name_bytes).hexdigest()
            return Resolution(None, _GATES[gate], subject, experiment)
    result = slot(identifier, experiment, site)
    if result.group is None:
        return Resolution(None, Reason.NOT_SAMPLED, result.subject_id, experiment)
    return Resolution(result.group, Reason.ASSIGNED, result.subject_id, experiment)


def plan_for(experiment: Experiment, site: str | None) -> Any:
    """The C accelerator's plan of ``experiment`` on ``site``, built once and kept in
    ``experiment.plans``: the layout's slots, the gates' hash suffixes, and the targeting
    condition compiled for C, or the Python evaluator when it is outside the C subset (decided
    here, once)."""
    assert ACCELERATED, "the C accelerator is not built"
    layout = layout_for(experiment, site)
    v2 = experiment.slv2
    holdouts: tuple[tuple[bytes, int], ...] = ()
    layer: tuple[bytes, int, int] | None = None
    condition: Callable[[Mapping[str, Any]], bool] | None = None
    if v2 is not None:
        holdouts = tuple((b":holdout:" + h.name.encode(), h.weight) for h in v2.holdouts)
        if v2.layer is not None:
            layer = (b":layer:" + v2.layer.name.encode(), v2.layer.low, v2.layer.high)
        if v2.targeting is not None:
            condition = native_condition(v2.targeting) or v2.matcher
    plan = _tkv1.Plan(experiment.name_bytes, layout.slot_groups, layout.threshold, holdouts,
                      layer, condition, Resolution, _PLAN_REASONS)
    experiment.plans[site] = plan
    return plan


def _accelerated_resolve(
    identifier: Identifier | None,
    experiment: Experiment | None,
    site: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
    override: str | None = None,
) -> Resolution:
    """Evaluate ``experiment`` for the unit ``identifier`` on ``site``, as :func:`pure_resolve`
    (the contract) does, through the C accelerator: the precedence here, then the gates and the
    slot in C from the experiment's plan for ``site`` (built on first use)."""
    early = _before_gates(identifier, experiment, now, override)
    if early is not None:
        return early
    assert identifier is not None and experiment is not None  # else answered before the gates
    plan = experiment.plans.get(site) or plan_for(experiment, site)
    result: Resolution = _tkv1.resolve_plan(plan, identifier, experiment, attributes)
    return result


resolve = pure_resolve
"""Evaluate one experiment for one unit (:func:`pure_resolve` is the contract). With the C
accelerator, a call with positional arguments only, once the experiment's plan for the site is
built, runs in C from start to end; anything else goes through Python first."""
if ACCELERATED:
    resolve = _tkv1.Resolver(_accelerated_resolve)
