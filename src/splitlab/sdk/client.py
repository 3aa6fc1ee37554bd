"""The SDK client: one per process, shared by every request, job and script.

:class:`Client` holds a config source, an event sender, the site and a clock. It answers
"which group is this unit in?" without side effects (:meth:`Client.get_assignment_for_user`,
for jobs, REST handlers and scripts) and makes the per-request
:class:`~splitlab.sdk.manager.ExperimentManager` (:meth:`Client.manager`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from splitlab.core.assignment import Identifier, assign_batch, identifier_bytes
from splitlab.core.model import Experiment
from splitlab.core.resolution import Reason, Resolution, resolve
from splitlab.sdk.attributes import RequestAttributes, attribute_map
from splitlab.sdk.config_index import ConfigIndex
from splitlab.sdk.config_sources import ConfigSource
from splitlab.sdk.events import EventSender
from splitlab.sdk.forking import renew_lock_after_fork
from splitlab.sdk.manager import ExperimentManager, HeaderItems, Runtime
from splitlab.sdk.metrics import Metrics
from splitlab.sdk.shape import Performer

log = logging.getLogger("splitlab.sdk")


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


class Client:
    """Thread-safe entry point of the SDK.

    ``config`` is a :class:`ConfigSource`; ``events`` an
    :class:`~splitlab.sdk.events.EventSender`; ``site`` selects per-site sample rates (``None``:
    the default rate); ``clock`` returns an aware UTC datetime (injectable for tests and for
    replaying jobs). Evaluation never raises into the host: failures answer "not enrolled",
    are logged and counted in :attr:`metrics`. Wrong argument types raise ``TypeError``.
    """

    def __init__(
        self,
        config: ConfigSource,
        events: EventSender,
        site: str | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
    ) -> None:
        if not callable(getattr(config, "load", None)):
            raise TypeError("config must have a load() method (a ConfigSource)")
        if not callable(getattr(events, "send", None)):
            raise TypeError("events must have a send() method (an EventSender)")
        if site is not None and not isinstance(site, str):
            raise TypeError(f"site must be a str or None, not {type(site).__name__}")
        self.config = config
        self.events = events
        self.metrics = metrics or Metrics()
        self._runtime = Runtime(events, self.metrics, site, clock)
        self._lock = threading.Lock()
        renew_lock_after_fork(self, "_lock")
        self._cache: tuple[tuple[Experiment, ...], ConfigIndex] | None = None

    @property
    def site(self) -> str | None:
        """The site whose sample rates apply."""
        return self._runtime.site

    def now(self) -> datetime:
        """The client's clock."""
        return self._runtime.clock()

    def experiment(self, name: str) -> Experiment | None:
        """The experiment called ``name`` in the current config (active or not), or ``None``."""
        if not isinstance(name, str):
            raise TypeError(f"experiment name must be a str, not {type(name).__name__}")
        return self.index().by_name.get(name)

    def index(self) -> ConfigIndex:
        """The source's current snapshot, indexed; re-indexed only when its experiments change
        (sources keep the same experiments tuple while the config is unchanged)."""
        try:
            experiments = self.config.load().experiments
        except Exception:  # a source must not raise; if one does, the host must not break
            log.exception("config source failed; using the last good config")
            self.metrics.evaluation_error("config_source")
            experiments = self._cache[0] if self._cache else ()
        cache = self._cache
        if cache is not None and cache[0] is experiments:
            return cache[1]
        with self._lock:
            if self._cache is None or self._cache[0] is not experiments:
                self._cache = (experiments, ConfigIndex.of(experiments))
            return self._cache[1]

    def get_assignment_for_user(
        self, identifier: Identifier, experiment_name: str,
        attributes: Mapping[str, Any] | None = None,
    ) -> str | None:
        """The group of the unit ``identifier`` in ``experiment_name`` now, or ``None`` when the
        experiment is unknown, not active, or the unit is not enrolled (see :meth:`resolve`).
        No events, no state: safe in jobs, REST handlers and scripts. ``identifier`` is the
        value of the experiment's sampling unit (the user id for ``mw-user``)."""
        return self.resolve(identifier, experiment_name, attributes).group

    def resolve(
        self, identifier: Identifier, experiment_name: str,
        attributes: Mapping[str, Any] | None = None, *, source: str = "client",
    ) -> Resolution:
        """The evaluation result of ``experiment_name`` for the unit ``identifier`` now, on the
        client's site, with ``attributes`` for targeting (where the client's site is ``site``
        unless they give their own, as in :meth:`manager`): the core's
        :func:`~splitlab.core.resolution.resolve`, except that a failure answers ``error``
        (logged and counted) instead of raising. ``source`` labels the unknown-experiment
        metric. Wrong argument types raise ``TypeError``."""
        identifier_bytes(identifier)  # TypeError for misuse, before anything can be swallowed
        if not isinstance(experiment_name, str):
            raise TypeError(f"experiment_name must be a str, not {type(experiment_name).__name__}")
        experiment = self.index().by_name.get(experiment_name)
        if experiment is None:
            self.metrics.unknown_experiment(experiment_name, source)
            return Resolution(None, Reason.UNKNOWN_EXPERIMENT)
        try:
            if self.site is not None and (attributes is None or "site" not in attributes):
                attributes = {"site": self.site, **(attributes or {})}
            return resolve(identifier, experiment, self.site, attributes, now=self.now())
        except Exception as error:  # evaluation never raises into the host
            log.exception("evaluating %s failed", experiment_name)
            self.metrics.evaluation_error("evaluation")
            return Resolution(None, Reason.ERROR, None, experiment, str(error))

    def get_assignments_for_users(
        self, identifiers: Iterable[Identifier], experiment_name: str
    ) -> list[str | None]:
        """:meth:`get_assignment_for_user` for many units, in order (the core's batch form;
        for millions of units on every core, see :func:`splitlab.bulk.assign_many`)."""
        units = list(identifiers)
        experiment = self._active(experiment_name)
        if experiment is None:
            for unit in units:
                identifier_bytes(unit)
            return [None] * len(units)
        return assign_batch(units, experiment, self.site).groups

    def manager(
        self,
        user_id: Identifier | None = None,
        anonymous_id: str | None = None,
        session_id: str | None = None,
        query_string: str | None = None,
        headers: HeaderItems | None = None,
        *,
        performer: Performer | None = None,
        attributes: RequestAttributes | Mapping[str, Any] | None = None,
    ) -> ExperimentManager:
        """The experiment manager of one request (or one job run): enrolls the given units on
        every active experiment of their sampling unit, applies ``mpo`` overrides from
        ``query_string`` and edge enrollments from the ``X-Experiment-Enrollments`` header.
        ``attributes`` are what targeting conditions see
        (:class:`~splitlab.sdk.attributes.RequestAttributes` or a mapping); ``site`` defaults
        to the client's, ``is_logged_in`` is true once a user id is known unless ``attributes``
        say it is false (the caller knows the request better)."""
        given = attribute_map(attributes)
        manager = ExperimentManager(self._runtime, self.index(), self._runtime.clock(), given)
        manager.read_request(query_string, headers)
        if user_id is not None or performer is not None:
            manager.update_user(user_id, performer=performer,
                                logged_in=given.get("is_logged_in") is not False)
        if anonymous_id is not None:
            manager.update_identifier("edge-unique", anonymous_id)
        if session_id is not None:
            manager.update_identifier("session", session_id)
        return manager

    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver pending events; ``True`` when all left within ``timeout`` seconds."""
        return self.events.flush(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Flush pending events (up to ``timeout`` seconds) and stop the sender."""
        self.events.close(timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _active(self, experiment_name: str) -> Experiment | None:
        if not isinstance(experiment_name, str):
            raise TypeError(f"experiment_name must be a str, not {type(experiment_name).__name__}")
        experiment = self.index().by_name.get(experiment_name)
        if experiment is None:
            self.metrics.unknown_experiment(experiment_name, "client")
            return None
        return experiment if experiment.is_active(self._runtime.clock()) else None
