"""What :meth:`ExperimentManager.get_experiment` returns: one experiment as one request sees it.

A handle of an experiment the request is not enrolled in (unknown, inactive, out of sample) has
no group and its methods are safe no-ops; so has an overridden one, except that it reports the
forced group. Only handles of real enrollments send events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from splitlab.core.resolution import Reason, Resolution
from splitlab.sdk.shape import EXPOSURE_ACTION, Enrollment


class EventEmitter(Protocol):
    """What a handle sends its events through (the request's manager)."""

    def emit(self, action: str, enrollment: Enrollment, extra: Mapping[str, Any] | None,
             dedupe: tuple[str, ...] | None) -> bool:
        """Build and send one event; ``False`` when deduplicated or failed."""
        ...

    def count_exposure(self, enrollment: Enrollment) -> None:
        """Count a sent exposure."""
        ...


class ExperimentHandle:
    """One experiment in one request.

    ``resolution`` is the evaluation result and ``reason`` its reason (``assigned``,
    ``override``, ``not_sampled``, ``holdout``, ``layer``, ``targeting``, ``inactive``,
    ``unknown_experiment``, ``error``). An edge enrollment while the anonymous id is unknown
    here is ``assigned`` with no subject id: the group is known, events cannot be attributed.
    """

    __slots__ = ("_emitter", "_group", "enrollment", "name", "resolution")

    def __init__(
        self,
        emitter: EventEmitter,
        name: str,
        resolution: Resolution,
        enrollment: Enrollment | None,
    ) -> None:
        self._emitter = emitter
        self.name = name
        self.resolution = resolution
        self._group = resolution.group
        self.enrollment = enrollment

    @property
    def reason(self) -> Reason:
        """Why the group is what it is."""
        return self.resolution.reason

    def __repr__(self) -> str:
        reason = self.reason.value
        return f"ExperimentHandle({self.name!r}, group={self._group!r}, reason={reason!r})"

    def get_assigned_group(self) -> str | None:
        """The unit's group, or ``None`` when not enrolled."""
        return self._group

    def is_assigned_group(self, *groups: str) -> bool:
        """Whether the unit is enrolled and its group is one of ``groups``."""
        return self._group is not None and self._group in groups

    @property
    def is_enrolled(self) -> bool:
        """Whether the unit has a group here (overrides included)."""
        return self._group is not None

    @property
    def subject_id(self) -> str | None:
        """The unit's pseudonym in this experiment (``None`` when no event can be sent)."""
        return self.enrollment.subject_id if self.enrollment else None

    def send(
        self,
        action: str,
        interaction_data: Mapping[str, Any] | None = None,
        contextual_attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Send an event with ``action``. ``interaction_data`` (``action_source``,
        ``action_subtype``, ``action_context``, ``element_id``, ...) and
        ``contextual_attributes`` (fragments such as ``page``) become top-level fields; the
        experiment fragment, ``meta``, ``$schema``, ``dt`` and ``action`` are the SDK's."""
        if not isinstance(action, str) or not action:
            raise TypeError("action must be a non-empty str")
        for label, value in (("interaction_data", interaction_data),
                             ("contextual_attributes", contextual_attributes)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"{label} must be a mapping, not {type(value).__name__}")
        if self.enrollment is None:
            return
        extra = {**(contextual_attributes or {}), **(interaction_data or {})}
        self._emitter.emit(action, self.enrollment, extra, None)

    def send_exposure(self) -> None:
        """Send ``experiment_exposure`` once per request and config version."""
        if self.enrollment is None:
            return
        if self._emitter.emit(EXPOSURE_ACTION, self.enrollment, None, ("exposure",)):
            self._emitter.count_exposure(self.enrollment)
