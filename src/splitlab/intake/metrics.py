"""The intake's Prometheus metrics, kept in a registry the caller creates and passes in.

No module-level metric objects: the service creates one ``CollectorRegistry``, hands it to every
area, and serves it at ``/metrics``. Stream labels are only ever configured stream names (or
``""`` for events naming no configured stream), so clients cannot grow the label set.
"""

from __future__ import annotations

from collections import Counter as Counter_
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from splitlab.intake.pipeline import EventStatus

BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
TRIGGERS = ("experiment_exposure", "experiment_enrollment")
Labels = tuple[str, str, str]
"""An experiment counter's labels: experiment, group, action."""
Exposures = list[tuple[int, Labels]]
"""A batch's exposures and enrollments of running experiments, by position
(:meth:`IntakeMetrics.exposures`)."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class IntakeMetrics:
    """Counters and histograms of the event intake."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: Iterable[str] = ("stream",)) -> Counter:
            return Counter(name, doc, list(labels), registry=registry)

        self.received = counter("splitlab_events_received_total", "Events received, by stream.")
        self.accepted = counter("splitlab_events_accepted_total", "Events durably stored.")
        self.invalid = counter("splitlab_events_invalid_total", "Events refused as invalid.")
        self.failed = counter("splitlab_events_failed_total", "Valid events that failed to store.")
        self.rejected = counter(
            "splitlab_event_requests_rejected_total",
            "Requests refused before any event was read, by reason.", ("reason",))
        self.sink_errors = counter(
            "splitlab_event_sink_errors_total", "Failed sink writes, by sink.", ("sink",))
        self.batch_size = Histogram(
            "splitlab_event_batch_size", "Events per request.", buckets=BATCH_BUCKETS,
            registry=registry)
        self.latency = Histogram(
            "splitlab_event_request_seconds", "Time to answer POST /v1/events.",
            ["mode"], buckets=LATENCY_BUCKETS, registry=registry)
        self.spool_depth = Gauge(
            "splitlab_event_spool_depth", "Events waiting in the local spool, by sink.",
            ["sink"], registry=registry, multiprocess_mode="livemax")
        self.hasty_queue = Gauge(
            "splitlab_event_hasty_queue_events", "Events waiting in the hasty queue.",
            registry=registry, multiprocess_mode="livesum")
        self.hasty_inline = Counter(
            "splitlab_event_hasty_inline_total",
            "Hasty batches processed before the answer because the hasty queue had no room.",
            registry=registry)

        self.experiment_events = counter(
            "splitlab_intake_experiment_events_total",
            "Exposure and enrollment events accepted, by running experiment, group and action.",
            ("experiment", "group", "action"))
        self._experiment_labels: set[tuple[str, str, str]] = set()
        self._children: dict[str, dict[str, Any]] = {}
        """Per stream (configured names only), its labelled counters."""

    def exposures(self, events: Sequence[Any], running: Mapping[str, frozenset[str]]
                  ) -> Exposures:
        """The position and labels of each exposure and enrollment event (either experiment
        fragment) of a running experiment in ``events``; :meth:`record_experiments` counts those
        that were stored. Taken before the batch is stored, so that the parsed events need not
        be kept while the write is awaited."""
        if not running:
            return []
        found: Exposures = []
        for position, event in enumerate(events):
            action = event.get("action") if isinstance(event, dict) else None
            if action not in TRIGGERS:
                continue
            found.extend((position, (name, group, action)) for name, group
                         in experiment_groups(event) if group in running.get(name, ()))
        return found

    def record_experiments(self, found: Exposures,
                           statuses: Sequence[EventStatus],
                           running: Mapping[str, frozenset[str]]) -> None:
        """Count the :meth:`exposures` of a batch whose events were accepted (``statuses`` by
        position); labels of experiments no longer running are dropped, so the label set stays
        bounded by the running experiments and their groups."""
        if not found and not self._experiment_labels:
            return
        tally = Counter_(labels for position, labels in found
                         if statuses[position].status == "success")
        for labels, count in tally.items():
            self.experiment_events.labels(*labels).inc(count)
            self._experiment_labels.add(labels)
        for labels in [k for k in self._experiment_labels if k[0] not in running]:
            self.experiment_events.remove(*labels)
            self._experiment_labels.discard(labels)

    def record(self, statuses: Iterable[EventStatus]) -> None:
        """Count one processed batch (one increment per stream and outcome, not per event)."""
        tally = Counter_((status.stream, status.status) for status in statuses)
        for (stream, status), count in tally.items():
            children = self._children.get(stream)
            if children is None:
                children = self._children[stream] = {
                    "received": self.received.labels(stream), "success":
                    self.accepted.labels(stream), "invalid": self.invalid.labels(stream),
                    "error": self.failed.labels(stream)}
            children["received"].inc(count)
            children[status].inc(count)


def experiment_groups(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(experiment, group)`` pairs an event names: the 2.1.0 ``experiment`` fragment, or every
    enrolled experiment of the 1.3.0 ``experiments`` fragment."""
    single = event.get("experiment")
    if isinstance(single, Mapping):
        name, group = single.get("enrolled"), single.get("assigned")
        return [(name, group)] if isinstance(name, str) and isinstance(group, str) else []
    plural = event.get("experiments")
    if not isinstance(plural, Mapping):
        return []
    enrolled, assigned = plural.get("enrolled"), plural.get("assigned")
    if not isinstance(enrolled, list) or not isinstance(assigned, Mapping):
        return []
    return [(n, assigned[n]) for n in enrolled
            if isinstance(n, str) and isinstance(assigned.get(n), str)]
