"""``GET /metrics``: Prometheus text from the registry every area records into."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route


class MetricsComponent:
    """Serves one ``CollectorRegistry`` (per worker process) at ``/metrics``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def routes(self) -> Sequence[BaseRoute]:
        """``GET /metrics``."""
        return [Route("/metrics", self.metrics, methods=["GET"])]

    async def metrics(self, request: Request) -> Response:
        """The registry in Prometheus' text format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""
