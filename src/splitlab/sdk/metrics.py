"""Counters the SDK keeps about itself, rendered as Prometheus text.

No dependency on ``prometheus_client``: an application exposes :meth:`Metrics.render` on its own
``/metrics`` route (or copies the values into the registry it already has). Label sets are capped
so that a flood of unknown experiment names cannot grow memory without bound.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from splitlab.sdk.forking import renew_lock_after_fork

LabelSet = tuple[tuple[str, str], ...]

DESCRIPTIONS: Mapping[str, str] = {
    "splitlab_sdk_enrollments_total": "Enrollment events sent, by experiment, group and source.",
    "splitlab_sdk_exposures_total": "Exposure events sent, by experiment, group and source.",
    "splitlab_sdk_unknown_experiments_total": "Lookups of experiments missing from the config.",
    "splitlab_sdk_evaluation_errors_total": "Evaluations that failed and answered not-enrolled.",
    "splitlab_sdk_ignored_input_total": "Malformed overrides or enrollment headers ignored.",
    "splitlab_sdk_events_sent_total": "Events the intake accepted.",
    "splitlab_sdk_events_dropped_total": "Events dropped, by reason.",
    "splitlab_sdk_send_retries_total": "Batches retried after an intake failure.",
    "splitlab_sdk_undecorated_pages_total": "HTML pages sent without decoration, by reason.",
}
"""Every counter the SDK knows, with its help text (unknown names are refused)."""

OVERFLOW_LABEL = "__other__"


class Metrics:
    """A thread-safe map of labelled counters.

    ``max_series`` bounds the series per counter: once reached, new label sets are folded into
    one series whose label values are ``__other__``.
    """

    def __init__(self, max_series: int = 1000) -> None:
        self._lock = threading.Lock()
        renew_lock_after_fork(self, "_lock")
        self._values: dict[str, dict[LabelSet, float]] = {}
        self._max_series = max_series

    def inc(self, name: str, labels: Mapping[str, str] | None = None, amount: float = 1) -> None:
        """Add ``amount`` to the series ``name{labels}``."""
        if name not in DESCRIPTIONS:
            raise TypeError(f"unknown SDK counter {name!r}")
        key: LabelSet = tuple(sorted(labels.items())) if labels else ()
        with self._lock:
            series = self._values.setdefault(name, {})
            if key not in series and len(series) >= self._max_series:
                key = tuple((label, OVERFLOW_LABEL) for label, _ in key)
            series[key] = series.get(key, 0) + amount

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The current value of one series (0 when never incremented)."""
        key: LabelSet = tuple(sorted(labels.items())) if labels else ()
        with self._lock:
            return self._values.get(name, {}).get(key, 0)

    def render(self) -> str:
        """Prometheus text exposition format (version 0.0.4) of every counter touched so far."""
        lines: list[str] = []
        with self._lock:
            snapshot = {name: dict(series) for name, series in self._values.items()}
        for name in sorted(snapshot):
            lines += [f"# HELP {name} {DESCRIPTIONS[name]}", f"# TYPE {name} counter"]
            for key, amount in sorted(snapshot[name].items()):
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
