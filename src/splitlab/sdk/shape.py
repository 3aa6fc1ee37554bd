"""The shape of the events the SDK sends: the web base field set plus the experiment fragment.

Events carry the unit's subject id, never the raw identifier of an anonymous unit;
``performer.id`` is present only for experiments whose sampling unit is ``mw-user``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from splitlab.core.exposure import DEFAULT_SCHEMA
from splitlab.core.model import DEFAULT_STREAM, Experiment, format_event_time

ENROLLMENT_STREAM = "product_metrics.experiment_enrollment"
ENROLLMENT_ACTION = "experiment_enrollment"
EXPOSURE_ACTION = "experiment_exposure"
COORDINATOR = "default"
AGENT = {"client_platform": "mediawiki_php"}
"""The server-side platform value of the web base schema's closed ``client_platform`` enum (the
one Test Kitchen's server SDK sends), so that events validate against the upstream schemas."""

RESERVED_FIELDS = frozenset({"$schema", "meta", "dt", "action", "experiment", "experiments"})
"""Fields that interaction data and contextual attributes may not replace."""


@dataclass(frozen=True, slots=True)
class Performer:
    """Who acts: a logged-in user (``user_id``) or not, and what kind of account it is.

    Events carry ``performer.id`` only for ``mw-user`` experiments and integer user ids."""

    user_id: int | str | None = None
    is_temp: bool = False
    is_bot: bool = False
    is_automatic: bool = False

    def fragment(self, unit: str) -> dict[str, Any]:
        """The ``performer`` fragment for an event of an experiment on ``unit``."""
        fragment: dict[str, Any] = {"is_logged_in": self.user_id is not None}
        if self.user_id is not None:
            fragment["is_temp"] = self.is_temp
            if unit == "mw-user" and isinstance(self.user_id, int):
                fragment["id"] = self.user_id  # the schema's performer.id is an integer
        return fragment


@dataclass(frozen=True, slots=True)
class Enrollment:
    """One experiment a unit is enrolled in, with everything an event about it needs."""

    experiment: Experiment
    group: str
    subject_id: str
    exposure_version: str
    origin: str = "sdk"
    """``sdk`` when assigned here, ``edge`` when taken from the enrollment header."""
    other_assigned: Mapping[str, str] | None = None
    """The unit's groups in its other experiments (enrollment events carry them)."""

    def fragment(self) -> dict[str, Any]:
        """The ``experiment`` fragment of an event."""
        experiment = self.experiment
        others = self.other_assigned
        extra = {} if others is None else {"other_assigned": dict(others)}
        return {
            "enrolled": experiment.name,
            "assigned": self.group,
            "subject_id": self.subject_id,
            "sampling_unit": experiment.user_identifier_type,
            "coordinator": COORDINATOR,
            "exposure_version": self.exposure_version,
            "phase_index": experiment.phase_index,
            "version": experiment.version,
            **extra,
        }


def build_event(
    action: str,
    enrollment: Enrollment,
    context: EventContext,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An event about ``enrollment``; ``extra`` holds interaction data and contextual
    attributes (top-level fields; the reserved ones are never replaced)."""
    experiment = enrollment.experiment
    if action == ENROLLMENT_ACTION:
        stream = experiment.stream_name or ENROLLMENT_STREAM
    else:
        stream = experiment.stream_name or DEFAULT_STREAM
    event: dict[str, Any] = {
        "$schema": experiment.schema_id or DEFAULT_SCHEMA,
        "meta": {"stream": stream},
        "dt": format_event_time(context.now),
        "action": action,
        "agent": dict(AGENT),
        "performer": context.performer.fragment(experiment.user_identifier_type),
        "experiment": enrollment.fragment(),
    }
    if context.site is not None:
        event["mediawiki"] = {"database": context.site}
    for key, value in (extra or {}).items():
        if key not in RESERVED_FIELDS:
            event[key] = value
    return event


@dataclass(frozen=True, slots=True)
class EventContext:
    """What an event knows of its surroundings: when, where, and who."""

    now: datetime
    site: str | None
    performer: Performer
