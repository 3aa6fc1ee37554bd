"""Operational metrics, served as Prometheus text at ``/metrics``.

One :class:`Metrics` object per application holds its own ``CollectorRegistry`` (no module-level
state); areas add their own collectors to ``metrics.registry``. With several uvicorn worker
processes each worker counts only its own requests and a scrape reaches one worker; run one
worker where exact counts matter (see docs/registry.md).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
            "The registry change counter behind the config documents this worker serves.",
            registry=self.registry)

    async def endpoint(self, request: Request) -> Response:
        """``GET /metrics``."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


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
            self.metrics.requests.labels(label, scope["method"], str(status)).inc()
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)
