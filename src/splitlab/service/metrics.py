"""Operational metrics, served as Prometheus text at ``/metrics``.

One :class:`Metrics` object per application holds its own ``CollectorRegistry`` (no module-level
state); areas add their own collectors to ``metrics.registry``.

With several uvicorn worker processes (``splitlab serve --workers N``), ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder in the data dir before the workers start, so every
worker writes its values there and a scrape of any worker answers for all of them (the
prometheus_client multiprocess mode). Gauges then say how to combine workers: live ones are
summed or maxed, and a worker that stops marks its values dead.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""Set (by ``splitlab serve`` with several workers) when workers share their metrics."""

_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


def cached_pid() -> int:
    """This process's id, read once and again after a fork (no system call per use)."""
    return _pid[0]


def share_values_cheaply() -> None:
    """In multiprocess mode, have prometheus_client tell processes apart by :func:`cached_pid`.

    Its default asks ``os.getpid()`` at every value update to notice a fork, a system call that
    took 2.7% of a worker's event loop at batches of 50 (py-spy, ~9 updates per request); the
    cached id changes after a fork just the same. Call it first thing in a new process (a
    worker of ``serve``), before any collector exists: collectors made before it keep the
    default, and two value classes must never write one process's file."""
    if os.environ.get(MULTIPROCESS_DIR):
        values.ValueClass = values.MultiProcessValue(cached_pid)  # type: ignore[no-untyped-call]


LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The service's collectors, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "splitlab_http_requests", "HTTP requests by route template, method and status.",
            ("route", "method", "status"), registry=self.registry)
        self.latency = Histogram(
            "splitlab_http_request_duration_seconds", "Time to the end of the response body.",
            ("route",), buckets=LATENCY_BUCKETS, registry=self.registry)
        self.config_version = Gauge(
            "splitlab_config_version",
            "The registry change counter behind the config documents the workers serve.",
            registry=self.registry, multiprocess_mode="livemax")
        self._live: list[Collector] = []
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[str, Any] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (labelled children are looked up once: routes are
        templates, so the set of label values stays bounded)."""
        key = (route, method, status)
        counter = self._counted.get(key)
        if counter is None:
            counter = self._counted[key] = self.requests.labels(route, method, str(status))
        counter.inc()
        timer = self._timed.get(route)
        if timer is None:
            timer = self._timed[route] = self.latency.labels(route)
        timer.observe(seconds)

    def add_live(self, collector: Collector) -> None:
        """Add a collector that computes its values at each scrape (from a database, say): it
        answers for every worker, so in multiprocess mode it is asked directly."""
        self.registry.register(collector)
        self._live.append(collector)

    async def endpoint(self, request: Request) -> Response:
        """``GET /metrics``: this process's collectors, or every worker's in multiprocess mode."""
        registry = self.registry
        if os.environ.get(MULTIPROCESS_DIR):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            for collector in self._live:
                registry.register(collector)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def close(self) -> None:
        """Mark this worker's live gauges dead (multiprocess mode); a no-op otherwise."""
        if os.environ.get(MULTIPROCESS_DIR):
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def fresh_metrics_dir(data_dir: Path) -> Path:
    """An empty folder for the workers' metric files (values of an earlier run are dropped)."""
    folder = data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


class MetricsMiddleware:
    """Counts every HTTP request by route template (never the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(label, scope["method"], status, time.perf_counter() - started)
