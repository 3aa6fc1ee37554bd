"""Counters the SDK keeps about itself, rendered as Prometheus text.

No dependency on ``prometheus_client``: an application exposes :meth:`Metrics.render` on its own
``/metrics`` route (or copies the values into the registry it already has). Label sets are capped
so that a flood of unknown experiment names cannot grow memory without bound.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from splitlab.sdk.forking import renew_lock_after_fork

LabelSet = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Counter:
    """One counter: its name, help text and the one label set every series of it has."""

    name: str
    help: str
    labels: tuple[str, ...] = ()


ENROLLMENTS = Counter("splitlab_sdk_enrollments_total",
                      "Enrollment events sent, by experiment, group and source.",
                      ("experiment", "group", "source"))
EXPOSURES = Counter("splitlab_sdk_exposures_total",
                    "Exposure events sent, by experiment, group and source.",
                    ("experiment", "group", "source"))
UNKNOWN_EXPERIMENTS = Counter("splitlab_sdk_unknown_experiments_total",
                              "Lookups of experiments missing from the config, by source.",
                              ("experiment", "source"))
EVALUATION_ERRORS = Counter("splitlab_sdk_evaluation_errors_total",
                            "Evaluations that failed and answered not-enrolled.", ("reason",))
IGNORED_INPUT = Counter("splitlab_sdk_ignored_input_total",
                        "Malformed overrides or enrollment headers ignored.", ("source",))
EVENTS_SENT = Counter("splitlab_sdk_events_sent_total", "Events the intake accepted.")
EVENTS_DROPPED = Counter("splitlab_sdk_events_dropped_total", "Events dropped, by reason.",
                         ("reason",))
SEND_RETRIES = Counter("splitlab_sdk_send_retries_total",
                       "Batches retried after an intake failure.")
UNDECORATED_PAGES = Counter("splitlab_sdk_undecorated_pages_total",
                            "HTML pages sent without decoration, by reason.", ("reason",))

OVERFLOW_LABEL = "__other__"


class Metrics:
    """A thread-safe map of labelled counters, counted through typed methods (one per counter,
    so a call cannot name an unknown counter or the wrong labels, and counting never raises).

    ``max_series`` bounds the series per counter: once reached, new label sets are folded into
    one series whose label values are ``__other__``.
    """

    def __init__(self, max_series: int = 1000) -> None:
        self._lock = threading.Lock()
        renew_lock_after_fork(self, "_lock")
        self._values: dict[Counter, dict[LabelSet, float]] = {}
        self._max_series = max_series

    def enrollment(self, experiment: str, group: str, source: str) -> None:
        """An enrollment event was sent."""
        self._add(ENROLLMENTS, (experiment, group, source))

    def exposure(self, experiment: str, group: str, source: str) -> None:
        """An exposure event was sent."""
        self._add(EXPOSURES, (experiment, group, source))

    def unknown_experiment(self, experiment: str, source: str) -> None:
        """An experiment missing from the config was asked for (``source``: where)."""
        self._add(UNKNOWN_EXPERIMENTS, (experiment, source))

    def evaluation_error(self, reason: str) -> None:
        """An evaluation failed and answered not-enrolled."""
        self._add(EVALUATION_ERRORS, (reason,))

    def ignored_input(self, source: str) -> None:
        """A malformed override or enrollment header was ignored."""
        self._add(IGNORED_INPUT, (source,))

    def events_sent(self, count: int) -> None:
        """``count`` events were accepted by the intake."""
        self._add(EVENTS_SENT, (), count)

    def events_dropped(self, reason: str, count: int = 1) -> None:
        """``count`` events were dropped for ``reason``."""
        self._add(EVENTS_DROPPED, (reason,), count)

    def send_retry(self) -> None:
        """A batch is retried after an intake failure."""
        self._add(SEND_RETRIES, ())

    def undecorated_page(self, reason: str) -> None:
        """An HTML page went out without decoration (``reason``: why)."""
        self._add(UNDECORATED_PAGES, (reason,))

    def _add(self, counter: Counter, values: tuple[str, ...], amount: float = 1) -> None:
        key: LabelSet = tuple(zip(counter.labels, values, strict=True))
        with self._lock:
            series = self._values.setdefault(counter, {})
            if key not in series and len(series) >= self._max_series:
                key = tuple((label, OVERFLOW_LABEL) for label in counter.labels)
            series[key] = series.get(key, 0) + amount

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The current value of the series ``name{labels}`` (0 when never incremented)."""
        with self._lock:
            for counter, series in self._values.items():
                if counter.name == name:
                    wanted = labels or {}
                    key = tuple((label, wanted.get(label, "")) for label in counter.labels)
                    return series.get(key, 0) if len(wanted) == len(key) else 0
        return 0

    def render(self) -> str:
        """Prometheus text exposition format (version 0.0.4) of every counter touched so far."""
        lines: list[str] = []
        with self._lock:
            snapshot = {counter: dict(series) for counter, series in self._values.items()}
        for counter in sorted(snapshot, key=lambda c: c.name):
            name = counter.name
            lines += [f"# HELP {name} {counter.help}", f"# TYPE {name} counter"]
            for key, amount in sorted(snapshot[counter].items()):
                lines.append(f"{name}{_labels(key)} {_number(amount)}")
        return "\n".join(lines) + ("\n" if lines else "")


def _labels(key: LabelSet) -> str:
    if not key:
        return ""
    body = ",".join(f'{label}="{_escape(value)}"' for label, value in key)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(amount: float) -> str:
    return str(int(amount)) if float(amount).is_integer() else repr(float(amount))
