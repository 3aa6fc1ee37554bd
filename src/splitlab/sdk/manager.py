"""The per-request experiment manager and the experiment handles it gives out.

A manager lives for one request (or one job run) and is not shared between threads. It enrolls
each known unit of the request on every active experiment of that sampling unit, applies QA
overrides (``mpo``) and edge enrollments (``X-Experiment-Enrollments``), and can learn a new
identity mid-request (:meth:`ExperimentManager.update_user`, the account-creation case).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qs

from splitlab.core.assignment import Assignment, Identifier, assign, identifier_bytes, subject_id
from splitlab.core.decoration import EnrollmentResult
from splitlab.core.headers import parse_enrollments_header, parse_overrides
from splitlab.core.model import IDENTIFIER_TYPES, Experiment
from splitlab.errors import HeaderError, OverrideError
from splitlab.sdk.client_payload import PayloadOptions, build_payload
from splitlab.sdk.config_index import ConfigIndex
from splitlab.sdk.events import EventSender
from splitlab.sdk.handle import ExperimentHandle
from splitlab.sdk.metrics import Metrics
from splitlab.sdk.shape import (
    ENROLLMENT_ACTION,
    EXPOSURE_ACTION,
    Enrollment,
    EventContext,
    Performer,
    build_event,
)

log = logging.getLogger("splitlab.sdk")
ENROLLMENTS_HEADER = "x-experiment-enrollments"
_UNIT_OF_KIND = {"user": "mw-user", **{unit: unit for unit in IDENTIFIER_TYPES}}


class HeaderItems(Protocol):
    """Request headers: a mapping, or anything with ``items()`` such as Werkzeug's ``Headers``."""

    def items(self) -> Iterable[tuple[str, str]]:
        """Every (name, value) pair."""
        ...


@dataclass(frozen=True, slots=True)
class Runtime:
    """What every manager of one client shares."""

    events: EventSender
    metrics: Metrics
    site: str | None
    clock: Callable[[], datetime]


class ExperimentManager:
    """Enrollments of one request. Build it with :meth:`splitlab.sdk.Client.manager`."""

    def __init__(
        self,
        runtime: Runtime,
        index: ConfigIndex,
        now: datetime,
    ) -> None:
        self._runtime = runtime
        self._index = index
        self._by_name = index.by_name
        self._active = index.active_by_unit(now)
        self._units: dict[str, Identifier] = {}
        self._assigned: dict[str, Assignment] = {}
        self._edge: dict[str, str] = {}
        self._overrides: dict[str, str] = {}
        self._performer = Performer()
        self._sent: set[tuple[str, ...]] = set()
        self._held: list[tuple[dict[str, Any], Enrollment]] | None = None

    # -- identities ---------------------------------------------------------------------------

    def update_user(
        self,
        user_id: Identifier | None,
        *,
        performer: Performer | None = None,
    ) -> None:
        """Tell the manager who the logged-in user is (for example right after the account was
        created): enrolls them on every active ``mw-user`` experiment. ``performer`` carries the
        account flags (temporary, bot, automatic); its ``user_id`` is used when ``user_id`` is
        ``None``."""
        if performer is not None and not isinstance(performer, Performer):
            raise TypeError(f"performer must be a Performer, not {type(performer).__name__}")
        user = user_id if user_id is not None else (performer.user_id if performer else None)
        if user is None:
            raise TypeError("update_user needs a user id (or a Performer with one)")
        base = performer or Performer()
        self._performer = Performer(user, base.is_temp, base.is_bot, base.is_automatic)
        self.update_identifier("mw-user", user)

    def update_identifier(self, kind: str, value: Identifier) -> None:
        """Set the unit of sampling ``kind`` (``mw-user``/``user``, ``edge-unique``,
        ``session``) to ``value`` and (re-)enroll it on that unit's active experiments."""
        unit = _UNIT_OF_KIND.get(kind) if isinstance(kind, str) else None
        if unit is None:
            raise TypeError(f"kind must be one of {', '.join(IDENTIFIER_TYPES)}, got {kind!r}")
        identifier_bytes(value)
        if unit != "mw-user" and not isinstance(value, str):
            raise TypeError(f"a {unit} identifier must be a str, not {type(value).__name__}")
        previous = self._units.get(unit)
        if previous == value:
            return
        self._units[unit] = value
        if unit == "edge-unique" and self._edge:
            return  # the edge already enrolled this unit; its header is authoritative
        self._enroll(self._active.get(unit, ()), value, replace=previous is not None)

    def _enroll(self, experiments: tuple[Experiment, ...], value: Identifier,
                replace: bool) -> None:
        site, assigned = self._runtime.site, self._assigned
        try:
            for experiment in experiments:
                result = assign(value, experiment, site)
                if result.in_sample:
                    assigned[experiment.name] = result
                elif replace:
                    assigned.pop(experiment.name, None)
        except Exception:  # evaluation never raises into the host
            log.exception("enrollment failed; the unit stays unenrolled")
            self._runtime.metrics.inc("splitlab_sdk_evaluation_errors_total",
                                      {"reason": "enrollment"})

    # -- request input ------------------------------------------------------------------------

    def read_request(self, query_string: str | None, headers: HeaderItems | None) -> None:
        """Apply ``mpo`` overrides from ``query_string`` and edge enrollments from the
        ``X-Experiment-Enrollments`` header. Malformed input is logged, counted and ignored."""
        if query_string is not None and not isinstance(query_string, str):
            raise TypeError(f"query_string must be a str, not {type(query_string).__name__}")
        if headers is not None and not callable(getattr(headers, "items", None)):
            raise TypeError(f"headers must be a mapping, not {type(headers).__name__}")
        if query_string and "mpo=" in query_string:
            values = parse_qs(query_string).get("mpo")
            if values:
                self._read_overrides(values[-1])
        if headers:
            for key, value in headers.items():
                if key.lower() == ENROLLMENTS_HEADER:
                    self._read_edge(value)

    def _read_overrides(self, text: str) -> None:
        try:
            overrides = parse_overrides(text)
        except OverrideError as error:
            self._ignored("mpo", str(error))
            return
        for name, group in overrides.items():
            experiment = self._known(name, "override")
            if experiment is None:
                continue
            if group not in experiment.groups:
                self._ignored("mpo", f"{name!r} has no group {group!r}")
                continue
            self._overrides[name] = group

    def _read_edge(self, value: str) -> None:
        try:
            entries = parse_enrollments_header(value)
        except HeaderError as error:
            self._ignored("header", str(error))
            return
        for name, group in entries.items():
            experiment = self._known(name, "header")
            if experiment is None:
                continue
            if experiment.user_identifier_type != "edge-unique" or group not in experiment.groups:
                self._ignored("header", f"edge enrollment {name}={group} does not fit the config")
                continue
            self._edge[name] = group

    def _known(self, name: str, source: str) -> Experiment | None:
        experiment = self._by_name.get(name)
        if experiment is None:
            self._runtime.metrics.inc("splitlab_sdk_unknown_experiments_total",
                                      {"experiment": name, "source": source})
        return experiment

    def _ignored(self, source: str, reason: str) -> None:
        log.warning("ignored malformed %s: %s", source, reason)
        self._runtime.metrics.inc("splitlab_sdk_ignored_input_total", {"source": source})

    # -- questions ----------------------------------------------------------------------------

    def get_experiment(self, name: str) -> ExperimentHandle:
        """The handle of experiment ``name``: a null handle (group ``None``, no-op methods) when
        the experiment is unknown or the request's units are not enrolled in it."""
        if not isinstance(name, str):
            raise TypeError(f"experiment name must be a str, not {type(name).__name__}")
        if name in self._overrides:
            return ExperimentHandle(self, name, self._overrides[name], None, "override")
        experiment = self._by_name.get(name)
        if experiment is None:
            self._runtime.metrics.inc("splitlab_sdk_unknown_experiments_total",
                                      {"experiment": name, "source": "lookup"})
            return ExperimentHandle(self, name, None, None, "unknown")
        enrollment = self._enrollment(experiment)
        if enrollment is not None:
            return ExperimentHandle(self, name, enrollment.group, enrollment, "enrolled")
        if name in self._edge:  # edge-enrolled, but the anonymous id is not known here
            return ExperimentHandle(self, name, self._edge[name], None, "no_subject_id")
        return ExperimentHandle(self, name, None, None, self._why_not(experiment))

    def _enrollment(self, experiment: Experiment) -> Enrollment | None:
        name = experiment.name
        version = experiment.exposure_version
        if name in self._edge:
            anonymous = self._units.get("edge-unique")
            if anonymous is None:
                return None
            return Enrollment(experiment, self._edge[name], subject_id(anonymous, name), version,
                              "edge")
        result = self._assigned.get(name)
        if result is None or result.group is None:
            return None
        return Enrollment(experiment, result.group, result.subject_id, version)

    def _why_not(self, experiment: Experiment) -> str:
        if experiment not in self._active.get(experiment.user_identifier_type, ()):
            return "inactive"
        if experiment.user_identifier_type not in self._units:
            return "no_identifier"
        return "not_in_sample"

    def enrollment_result(self) -> EnrollmentResult:
        """Everything this request is enrolled in, for page decoration."""
        result = EnrollmentResult()
        for name, group in self._overrides.items():
            result.add_override(name, group)
        anonymous = self._units.get("edge-unique")
        for name, group in self._edge.items():
            if name in self._overrides:
                continue
            result.add_assignment(name, group, "" if anonymous is None else
                                  subject_id(anonymous, name))
            if anonymous is None:  # no subject id can be given without the anonymous id
                del result.subject_ids[name]
        for name, assigned in self._assigned.items():
            if assigned.group is not None and name not in self._edge:
                result.add_assignment(name, assigned.group, assigned.subject_id)
        return result

    def client_payload(self, options: PayloadOptions) -> dict[str, Any]:
        """The client payload (:mod:`splitlab.sdk.client_payload`) of this request's unit: its
        identifiers so far (anonymous id, and the user id once known), the client's site unless
        ``options`` names one, and the client's clock."""
        if options.site is None:
            options = replace(options, site=self._runtime.site)
        return build_payload(self._by_name.values(), self._units, self._runtime.clock(), options)

    def body_classes(self, result: EnrollmentResult, prefix: str) -> str:
        """The body classes of ``result`` (see :func:`splitlab.core.decoration.body_classes`),
        space-separated."""
        return self._index.body_classes(result, prefix)

    def enrollments_header(self) -> str:
        """``X-Experiment-Enrollments`` for a response: every assigned experiment whose names
        fit the header's grammar (others are left out)."""
        entry = self._index.header_entry
        groups = {name: result.group for name, result in self._assigned.items()
                  if result.group is not None}
        groups.update(self._edge)
        groups.update(self._overrides)
        return "".join([entry(name, group) for name, group in groups.items()])

    # -- events -------------------------------------------------------------------------------

    def log_enrollment(
        self,
        experiment: str,
        action_source: str,
        *,
        exclude_automatic: bool = False,
        exclude_temp: bool = False,
        exclude_bots: bool = False,
    ) -> bool:
        """Send one ``experiment_enrollment`` event for this unit and ``action_source`` (for
        example ``account_creation``, ``page_view``, ``api``, ``job``); at most once per
        request, source and config version. ``False`` when nothing was sent: not enrolled,
        overridden, or the account is of an excluded kind."""
        if not isinstance(action_source, str) or not action_source:
            raise TypeError("action_source must be a non-empty str")
        performer = self._performer
        if ((exclude_automatic and performer.is_automatic) or (exclude_temp and performer.is_temp)
                or (exclude_bots and performer.is_bot)):
            return False
        enrollment = self.get_experiment(experiment).enrollment
        if enrollment is None:
            return False
        sent = self.emit(ENROLLMENT_ACTION, enrollment, {"action_source": action_source},
                         ("enrollment", action_source))
        if sent:
            self.count("splitlab_sdk_enrollments_total", enrollment, action_source)
        return sent

    def emit(self, action: str, enrollment: Enrollment, extra: Mapping[str, Any] | None,
             dedupe: tuple[str, ...] | None) -> bool:
        """Build and send one event (used by handles); ``False`` when deduplicated, failed, or
        an exposure held back (:meth:`hold_exposures`)."""
        if dedupe is not None:
            key = (*dedupe, enrollment.experiment.name, enrollment.exposure_version)
            if key in self._sent:
                return False
            self._sent.add(key)
        try:
            context = EventContext(self._runtime.clock(), self._runtime.site, self._performer)
            event = build_event(action, enrollment, context, extra)
            if action == EXPOSURE_ACTION and self._held is not None:
                self._held.append((event, enrollment))
                return False
            self._runtime.events.send(event)
        except Exception:  # sending never raises into the host
            log.exception("could not send %s for %s", action, enrollment.experiment.name)
            self._runtime.metrics.inc("splitlab_sdk_evaluation_errors_total", {"reason": "send"})
            return False
        return True

    def hold_exposures(self) -> None:
        """Keep exposure events back (built, not sent, not yet counted) until
        :meth:`release_exposures`: the web middlewares hold them until they know whether the
        response shows the experiment (a decorated page, an API response) or not."""
        if self._held is None:
            self._held = []

    def release_exposures(self, seen: bool, reason: str = "page_not_decorated") -> int:
        """Stop holding: send and count the held exposures when ``seen``; otherwise drop them,
        counted in ``splitlab_sdk_events_dropped_total{reason}``. Returns how many were held."""
        held, self._held = self._held or [], None
        for event, enrollment in held:
            if not seen:
                self._runtime.metrics.inc("splitlab_sdk_events_dropped_total", {"reason": reason})
                continue
            try:
                self._runtime.events.send(event)
            except Exception:  # sending never raises into the host
                log.exception("could not send the exposure for %s", enrollment.experiment.name)
                self._runtime.metrics.inc("splitlab_sdk_evaluation_errors_total",
                                          {"reason": "send"})
                continue
            self.count("splitlab_sdk_exposures_total", enrollment, enrollment.origin)
        return len(held)

    def count(self, counter: str, enrollment: Enrollment, source: str) -> None:
        """Count a sent enrollment or exposure."""
        self._runtime.metrics.inc(counter, {"experiment": enrollment.experiment.name,
                                            "group": enrollment.group, "source": source})

