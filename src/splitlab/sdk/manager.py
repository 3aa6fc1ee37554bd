"""The per-request experiment manager and the experiment handles it gives out.

A manager lives for one request (or one job run) and is not shared between threads. It enrolls
each known unit of the request on every active experiment of that sampling unit (with the
request's attributes for targeting), applies QA overrides (``mpo``) and edge enrollments
(``X-Experiment-Enrollments``), and can learn a new identity mid-request
(:meth:`ExperimentManager.update_user`, the account-creation case). Every answer comes from one
method, :meth:`ExperimentManager.resolution`, where the precedence override > edge > assigned is
written once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qs

from splitlab.core.assignment import Identifier, identifier_bytes, subject_id
from splitlab.core.decoration import EnrollmentResult
from splitlab.core.headers import parse_enrollments_header, parse_overrides
from splitlab.core.model import IDENTIFIER_TYPES, Experiment
from splitlab.core.resolution import Reason, Resolution, resolve
from splitlab.errors import HeaderError, OverrideError
from splitlab.sdk.attributes import RequestAttributes, attribute_map
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
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self._runtime = runtime
        self._index = index
        self._by_name = index.by_name
        self._active = index.active_by_unit(now)
        self._now = now
        self._units: dict[str, Identifier] = {}
        self._resolved: dict[str, Resolution] = {}
        self._edge: dict[str, str] = {}
        self._overrides: dict[str, str] = {}
        self._performer = Performer()
        self._attributes: dict[str, Any] = {} if runtime.site is None else {"site": runtime.site}
        self._attributes.update(attributes or {})
        self._sent: set[tuple[str, ...]] = set()
        self._held: list[tuple[dict[str, Any], Enrollment]] | None = None

    # -- identities ---------------------------------------------------------------------------

    def update_user(
        self,
        user_id: Identifier | None,
        *,
        performer: Performer | None = None,
        logged_in: bool = True,
    ) -> None:
        """Tell the manager who the logged-in user is (for example right after the account was
        created): enrolls them on every active ``mw-user`` experiment. ``performer`` carries the
        account flags (temporary, bot, automatic); its ``user_id`` is used when ``user_id`` is
        ``None``. The attribute ``is_logged_in`` becomes ``logged_in`` (when it changes, the
        request's other units are re-enrolled with it, as :meth:`update_attributes` does)."""
        if performer is not None and not isinstance(performer, Performer):
            raise TypeError(f"performer must be a Performer, not {type(performer).__name__}")
        user = user_id if user_id is not None else (performer.user_id if performer else None)
        if user is None:
            raise TypeError("update_user needs a user id (or a Performer with one)")
        base = performer or Performer()
        self._performer = Performer(user, base.is_temp, base.is_bot, base.is_automatic)
        if self._attributes.get("is_logged_in") is not logged_in:  # e.g. anonymous until signup
            self.update_attributes({"is_logged_in": logged_in})
        self.update_identifier("mw-user", user)

    @property
    def attributes(self) -> Mapping[str, Any]:
        """What targeting conditions see for this request (see :meth:`update_attributes`)."""
        return self._attributes

    def update_attributes(self, attributes: RequestAttributes | Mapping[str, Any]) -> None:
        """Merge ``attributes`` (:class:`~splitlab.sdk.attributes.RequestAttributes` or a
        mapping: ``site``, ``skin``, ``platform``, ``is_logged_in``, ``edit_count``,
        ``registration_date``, and whatever the application adds) into the request's, and
        re-enroll every known unit with them."""
        self._attributes.update(attribute_map(attributes))
        for unit, value in self._units.items():
            if unit != "edge-unique" or not self._edge:
                self._enroll(self._active.get(unit, ()), value)

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
        self._enroll(self._active.get(unit, ()), value)

    def _enroll(self, experiments: tuple[Experiment, ...], value: Identifier) -> None:
        site, resolved, attributes = self._runtime.site, self._resolved, self._attributes
        for experiment in experiments:
            try:
                resolved[experiment.name] = resolve(value, experiment, site, attributes)
            except Exception as error:  # evaluation never raises into the host
                log.exception("enrolling %s failed; the unit stays unenrolled", experiment.name)
                self._runtime.metrics.evaluation_error("enrollment")
                resolved[experiment.name] = Resolution(None, Reason.ERROR, None, experiment,
                                                       str(error))

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
            self._runtime.metrics.unknown_experiment(name, source)
        return experiment

    def _ignored(self, source: str, reason: str) -> None:
        log.warning("ignored malformed %s: %s", source, reason)
        self._runtime.metrics.ignored_input(source)

    # -- questions ----------------------------------------------------------------------------

    def resolution(self, name: str) -> Resolution:
        """The evaluation result of experiment ``name`` for this request. Precedence: an
        unknown name, then an ``mpo`` override, then an edge enrollment (its subject id is
        ``None`` while the anonymous id is unknown here), then the request's own units."""
        experiment = self._by_name.get(name)
        if experiment is None:
            return Resolution(None, Reason.UNKNOWN_EXPERIMENT)
        if name in self._overrides:
            return Resolution(self._overrides[name], Reason.OVERRIDE, None, experiment)
        if name in self._edge:
            anonymous = self._units.get("edge-unique")
            subject = None if anonymous is None else subject_id(anonymous, name)
            return Resolution(self._edge[name], Reason.ASSIGNED, subject, experiment, "edge")
        found = self._resolved.get(name)
        if found is not None:
            return found
        identifier = self._units.get(experiment.user_identifier_type)
        return resolve(identifier, experiment, self._runtime.site, self._attributes,
                       now=self._now)

    def get_experiment(self, name: str) -> ExperimentHandle:
        """The handle of experiment ``name``: a null handle (group ``None``, no-op methods) when
        the experiment is unknown or the request's units are not enrolled in it."""
        if not isinstance(name, str):
            raise TypeError(f"experiment name must be a str, not {type(name).__name__}")
        found = self.resolution(name)
        if found.reason is Reason.UNKNOWN_EXPERIMENT:
            self._runtime.metrics.unknown_experiment(name, "lookup")
        return ExperimentHandle(self, name, found, _enrollment(found))

    def _resolutions(self) -> dict[str, Resolution]:
        """Every experiment this request has a group in (overrides included), in the order
        overrides, edge enrollments, own assignments."""
        names = [*self._overrides, *self._edge, *self._resolved]
        return {name: found for name in dict.fromkeys(names)
                if (found := self.resolution(name)).group is not None}

    def enrollment_result(self) -> EnrollmentResult:
        """Everything this request is enrolled in, for page decoration."""
        result = EnrollmentResult()
        for name, found in self._resolutions().items():
            assert found.group is not None
            if found.reason is Reason.OVERRIDE:
                result.add_override(name, found.group)
                continue
            result.add_assignment(name, found.group, found.subject_id or "")
            if found.subject_id is None:  # no subject id without the anonymous id
                del result.subject_ids[name]
        return result

    def client_payload(self, options: PayloadOptions) -> dict[str, Any]:
        """The client payload (:mod:`splitlab.sdk.client_payload`) of this request's unit: its
        identifiers so far (anonymous id, and the user id once known), the client's site unless
        ``options`` names one, and the client's clock."""
        if options.site is None:
            options = replace(options, site=self._runtime.site)
        return build_payload(self._by_name.values(), self._units, self._runtime.clock(), options,
                             self._attributes)

    def body_classes(self, result: EnrollmentResult, prefix: str) -> str:
        """The body classes of ``result`` (see :func:`splitlab.core.decoration.body_classes`),
        space-separated."""
        return self._index.body_classes(result, prefix)

    def enrollments_header(self) -> str:
        """``X-Experiment-Enrollments`` for a response: every experiment with a group whose
        names fit the header's grammar (others are left out)."""
        entry = self._index.header_entry
        return "".join([entry(name, str(found.group))
                        for name, found in self._resolutions().items()])

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
        others = {name: str(found.group) for name, found in self._resolutions().items()
                  if found.enrolled and name != experiment}
        sent = self.emit(ENROLLMENT_ACTION, replace(enrollment, other_assigned=others),
                         {"action_source": action_source}, ("enrollment", action_source))
        if sent:
            self._runtime.metrics.enrollment(experiment, enrollment.group, action_source)
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
            self._runtime.metrics.evaluation_error("send")
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
                self._runtime.metrics.events_dropped(reason)
                continue
            try:
                self._runtime.events.send(event)
            except Exception:  # sending never raises into the host
                log.exception("could not send the exposure for %s", enrollment.experiment.name)
                self._runtime.metrics.evaluation_error("send")
                continue
            self.count_exposure(enrollment)
        return len(held)

    def count_exposure(self, enrollment: Enrollment) -> None:
        """Count a sent exposure."""
        self._runtime.metrics.exposure(enrollment.experiment.name, enrollment.group,
                                       enrollment.origin)


def _enrollment(found: Resolution) -> Enrollment | None:
    """What events about an enrollment need; ``None`` when none can be sent (not enrolled,
    overridden, or no subject id)."""
    if not found.enrolled or found.experiment is None or found.subject_id is None:
        return None
    origin = "edge" if found.detail == "edge" else "sdk"
    return Enrollment(found.experiment, str(found.group), found.subject_id,
                      found.experiment.exposure_version, origin)

