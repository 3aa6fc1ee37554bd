"""The ASGI application: every area of the service contributes routes and a lifecycle.

An area (config and admin API, event intake, OFREP, ...) is a :class:`Component`; this module
only composes them, so areas never import each other.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from splitlab.service.intake import IntakeComponent
from splitlab.service.metrics import Metrics, MetricsMiddleware
from splitlab.service.registry_api import RegistryComponent
from splitlab.service.settings import Settings


class Component(Protocol):
    """One area of the service."""

    def routes(self) -> Sequence[BaseRoute]:
        """The HTTP routes this area serves."""
        ...

    async def start(self) -> None:
        """Called once before the first request (open stores, connect sinks)."""
        ...

    async def stop(self) -> None:
        """Called once on shutdown (flush, close); must not raise."""
        ...


def build_components(settings: Settings, metrics: Metrics) -> list[Component]:
    """The areas the service runs with ``settings``; each may add collectors to ``metrics``."""
    # The intake first: POST /v1/events is the hottest route, matched before the registry's.
    return [IntakeComponent(settings, metrics.registry), RegistryComponent(settings, metrics)]


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings, components: Sequence[Component] | None = None,
               metrics: Metrics | None = None) -> Starlette:
    """The application for ``settings`` (components default to :func:`build_components`).

    ``metrics`` (one per application, created when not given) is served at ``/metrics``;
    ``app.state.metrics`` and ``app.state.components`` expose the parts to tests.
    """
    metrics = metrics or Metrics()
    parts = list(build_components(settings, metrics) if components is None else components)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started: list[Component] = []
        try:
            for part in parts:
                await part.start()
                started.append(part)
            yield
        finally:
            for part in reversed(started):
                await part.stop()

    routes: list[BaseRoute] = [Route("/healthz", health), Route("/metrics", metrics.endpoint)]
    for part in parts:
        routes.extend(part.routes())
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(MetricsMiddleware, metrics=metrics)])
    app.state.metrics = metrics
    app.state.components = parts
    return app


def app_from_env() -> Starlette:
    """Factory for uvicorn worker processes: settings come from the environment."""
    return create_app(Settings.from_env())
