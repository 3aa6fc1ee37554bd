"""The intake's Prometheus metrics, kept in a registry the caller creates and passes in.

No module-level metric objects: the service creates one ``CollectorRegistry``, hands it to every
area, and serves it at ``/metrics``. Stream labels are only ever configured stream names (or
``""`` for events naming no configured stream), so clients cannot grow the label set.
"""

from __future__ import annotations

from collections import Counter as Counter_
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from splitlab.intake.pipeline import EventStatus

BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
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

    def record(self, statuses: Iterable[EventStatus]) -> None:
        """Count one processed batch (one increment per stream and outcome, not per event)."""
        tally = Counter_((status.stream, status.status) for status in statuses)
        outcome = {"success": self.accepted, "invalid": self.invalid, "error": self.failed}
        for (stream, status), count in tally.items():
            self.received.labels(stream).inc(count)
            outcome[status].labels(stream).inc(count)
