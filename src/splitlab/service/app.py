"""The ASGI application: every area of the service contributes routes and a lifecycle.

An area (config and admin API, event intake, OFREP, ...) is a :class:`Component`; this module
only composes them, so areas never import each other (an import-linter contract checks it).
Errors raised by any area become responses in one place, :mod:`splitlab.service.problems`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from splitlab.errors import SplitlabError
from splitlab.process import tune_collector
from splitlab.registry.store import Registry
from splitlab.results.background import Runnable, SchedulerThread
from splitlab.results.store import ResultsStore, holder_name
from splitlab.sdk.client_payload import PayloadOptions
from splitlab.service.api_support import JSON_MEDIA_TYPE, RawEndpoint, json_response
from splitlab.service.client_access import ApiKeyGate, ExperimentSource
from splitlab.service.client_delivery import ClientDeliveryComponent
from splitlab.service.intake import IntakeComponent
from splitlab.service.metrics import Metrics, MetricsMiddleware
from splitlab.service.ofrep import OfrepComponent
from splitlab.service.openapi import docs_page, openapi_document
from splitlab.service.problems import error_response, exception_handlers
from splitlab.service.rate_limit import RateLimiter
from splitlab.service.registry_api import RegistryComponent, RegistryExperiments
from splitlab.service.results_api import ResultsComponent
from splitlab.service.settings import Settings
from splitlab.service.ui import UiComponent


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
    registry = RegistryComponent(settings, metrics)
    experiments = RegistryExperiments(registry)
    # The intake first: POST /v1/events is the hottest route, matched before the others.
    intake = IntakeComponent(settings, metrics.registry, running_groups=experiments.running_groups)
    results = ResultsComponent(settings, lambda: registry.started_registry,
                               results_scheduler(settings))
    metrics.add_live(results.gauges)
    ui = UiComponent(settings, lambda: registry.started_registry,
                     lambda: registry.cache.invalidate())
    return [intake, registry, results, *client_components(settings, experiments), ui]


log = logging.getLogger(__name__)
ANALYSIS_MODULES = ("duckdb", "pyarrow", "sqlglot", "numpy", "scipy")
"""What the in-service scheduler imports from the ``analysis`` extra."""


def results_scheduler(settings: Settings) -> Callable[[Registry], SchedulerThread] | None:
    """What starts the in-service scheduler (``None`` when ``results_interval`` is 0, or when the
    ``analysis`` extra that computes results is not installed: said once in the log)."""
    if settings.results_interval <= 0:
        return None
    missing = [m for m in ANALYSIS_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        log.warning("results are not computed: %s missing (pip install 'splitlab[analysis]', "
                    "or set SPLITLAB_RESULTS_INTERVAL=0 to silence this)", ", ".join(missing))
        return None

    def build(registry: Registry, holder: str) -> Runnable:
        from splitlab.intake.streams import load_catalog
        from splitlab.results.runner import RunnerConfig, build_scheduler

        config = RunnerConfig(
            settings.data_dir, settings.events_sink, settings.database_url,
            settings.table_prefix, settings.nats_url, settings.nats_stream,
            error_stream=load_catalog(settings.streams_file).error_stream,
            memory_limit=settings.results_memory)
        return build_scheduler(registry, config, holder)

    def start(registry: Registry) -> SchedulerThread:
        holder, store = holder_name(), ResultsStore(registry.engine, registry.tables.prefix)
        thread = SchedulerThread(
            lambda: build(registry, holder), settings.results_interval,
            lambda: store.claim(holder))
        thread.start()
        return thread

    return start


def client_components(settings: Settings, source: ExperimentSource) -> list[Component]:
    """Client delivery (signed payloads, keys) and OFREP over ``source``."""
    options = PayloadOptions(settings.client_experiments, salt=settings.client_name_salt)
    limiter = RateLimiter(settings.ofrep_rate_limit) if settings.ofrep_rate_limit else None
    return [
        ClientDeliveryComponent(source, settings.data_dir, options,
                                ApiKeyGate(settings.client_api_key)),
        OfrepComponent(source, options, ApiKeyGate(settings.client_api_key, limiter)),
    ]


async def health(request: Request) -> Response:
    return json_response({"status": "ok"})


def document_routes() -> list[BaseRoute]:
    """``GET /openapi.json`` (every area's routes) and ``GET /docs`` (the page rendering it)."""
    document = openapi_document()
    spec, page = orjson.dumps(document), docs_page(document)

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type=JSON_MEDIA_TYPE)

    async def docs(request: Request) -> Response:
        return Response(page, media_type="text/html")

    return [Route("/openapi.json", openapi, methods=["GET"]), Route("/docs", docs, methods=["GET"])]


class Service(Starlette):
    """The application: Starlette, except that the areas' raw endpoints (routes to a
    :class:`~splitlab.service.api_support.RawEndpoint`: the intake's ``POST /v1/events``) are
    served directly, ahead of the middleware stack and the router.

    Those layers cost 6-18% of the server's CPU per batch of 50 events (paired runs at 32
    connections). A direct route keeps the two that matter: it is counted by the same
    :class:`~splitlab.service.metrics.MetricsMiddleware` under its route template, and an
    exception it raises gets the response Starlette's handlers would give
    (:func:`answering_errors`). A request under a ``root_path`` takes the usual way."""

    def __init__(self, *, metrics: Metrics, **options: Any) -> None:
        super().__init__(**options)
        self.direct = {
            (method, route.path): (route, MetricsMiddleware(answering_errors(route.endpoint),
                                                            metrics))
            for route in self.routes
            if isinstance(route, Route) and isinstance(route.endpoint, RawEndpoint)
            for method in route.methods or ()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            direct = self.direct.get((scope["method"], scope["path"]))
            if direct is not None:
                route, counted = direct
                scope["app"], scope["route"] = self, route
                await counted(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def answering_errors(endpoint: ASGIApp) -> ASGIApp:
    """``endpoint`` answering an exception it raises before its answer begins the way the
    application's exception handlers would (:func:`splitlab.service.problems.error_response`),
    and re-raising it afterwards unless it is an error of the tree, as Starlette does (the server
    then logs it with its traceback)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        began = False

        async def sending(message: Message) -> None:
            nonlocal began
            began = began or message["type"] == "http.response.start"
            await send(message)

        try:
            await endpoint(scope, receive, sending)
        except Exception as error:
            if began:  # nothing else can be sent
                raise
            await (await error_response(Request(scope), error))(scope, receive, send)
            if not isinstance(error, SplitlabError | HTTPException):
                raise

    return app


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
            metrics.close()

    # The areas' routes first (the intake's POST /v1/events, the hottest, is matched first).
    routes: list[BaseRoute] = [route for part in parts for route in part.routes()]
    routes += [Route("/healthz", health), Route("/metrics", metrics.endpoint),
               *document_routes()]
    app = Service(routes=routes, lifespan=lifespan, exception_handlers=exception_handlers(),
                  middleware=[Middleware(MetricsMiddleware, metrics=metrics)], metrics=metrics)
    app.state.metrics = metrics
    app.state.components = parts
    return app


def app_from_env() -> Starlette:
    """Factory for uvicorn worker processes: settings come from the environment, and the
    collector is tuned for a server (:func:`splitlab.process.tune_collector`)."""
    app = create_app(Settings.from_env())
    tune_collector()
    return app
