"""The registry's HTTP area: the Test Kitchen config API (reads) and the admin API (writes).

Reads (``GET /api/v1/experiments`` and ``/api/v1/instruments``, and likewise ``/api/v1/layers``
and ``/api/v1/holdouts``) are public and served from precomputed bytes with strong ETags. Writes
need ``Authorization: Bearer <admin token>``; a request refused for any reason changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from splitlab.core.model import Experiment, format_time
from splitlab.errors import BadRequestError, UnavailableError
from splitlab.registry import views
from splitlab.registry.demo import seed_demo
from splitlab.registry.sites import SiteCatalog
from splitlab.registry.store import Record, Registry
from splitlab.service.api_support import (
    JSON_MEDIA_TYPE,
    actor,
    ensure_admin_token,
    etag_matches,
    json_response,
    read_json,
    require_admin,
)
from splitlab.service.config_documents import ChangeSignal, ChangeWatch, DocumentCache
from splitlab.service.metrics import Metrics
from splitlab.service.settings import Settings

CACHE_CONTROL = "public, max-age=30, stale-while-revalidate=30, stale-if-error=86400"
"""Shared caches may keep a document 30 s and serve it stale while refetching or on errors."""

SIGNAL_FILE = "registry.changed"
"""Replaced after every write so the other worker processes notice it at once."""

PLURAL = {"experiment": "experiments", "instrument": "instruments", "layer": "layers",
          "holdout": "holdouts"}
OPEN_RETRY_SECONDS = 2.0
UNAVAILABLE = "the experiment registry's database is not reachable yet; retry later"
log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


def record_json(record: Record, now_status: str) -> dict[str, Any]:
    """The admin API's view of one record."""
    return {"kind": record.kind, "name": record.name, "revision": record.revision,
            "status": now_status, "created_at": format_time(record.created_at),
            "updated_at": format_time(record.updated_at),
            "ended_at": format_time(record.ended_at), "row": record.row}


class RegistryComponent:
    """The registry, its read cache and its routes, as one :class:`Component` of the service."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._registry: Registry | None = None
        self._cache: DocumentCache | None = None
        self.signal = ChangeSignal(settings.data_dir / SIGNAL_FILE)
        self._opener: asyncio.Task[None] | None = None
        self.token = ""

    @property
    def registry(self) -> Registry:
        """The open store (between :meth:`start` and :meth:`stop`, once its database answered);
        :class:`UnavailableError` (503) until then."""
        if self._registry is None:
            raise UnavailableError(UNAVAILABLE)
        return self._registry

    @property
    def started_registry(self) -> Registry | None:
        """The open store, or ``None`` before :meth:`start` and after :meth:`stop`."""
        return self._registry

    @property
    def cache(self) -> DocumentCache:
        """The read cache (as :attr:`registry`)."""
        if self._cache is None:
            raise UnavailableError(UNAVAILABLE)
        return self._cache

    async def start(self) -> None:
        """Load or create the admin token, load the site catalog (:class:`ConfigError` when its
        file is invalid), open (and migrate) the store and seed the demo.

        A database that cannot be reached (PostgreSQL down) does not stop the service: it says
        so on the log and keeps trying every ``OPEN_RETRY_SECONDS`` in the background; until it
        succeeds the registry's routes answer 503 with ``Retry-After`` (the event intake, OFREP
        and client payloads work meanwhile, with no experiments for the last two).
        """
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.token, _ = ensure_admin_token(self.settings.admin_token, self.settings.data_dir)
        sites = SiteCatalog.load(self.settings.site_catalog)
        try:
            await self._open(sites)
        except OperationalError as error:
            log.error("the registry database is unreachable (%s); retrying every %g s, the "
                      "config and admin API answer 503 until then",
                      str(error.orig).strip() or error, OPEN_RETRY_SECONDS)
            self._opener = asyncio.create_task(self._open_later(sites))

    async def _open(self, sites: SiteCatalog) -> None:
        registry = await run_in_threadpool(
            Registry.open, self.settings.database_url, self.settings.data_dir,
            prefix=self.settings.table_prefix, sites=sites)
        if self.settings.demo:
            await run_in_threadpool(seed_demo, registry)
        self._cache = DocumentCache(registry, self.signal)
        self._registry = registry

    async def _open_later(self, sites: SiteCatalog) -> None:
        while True:
            await asyncio.sleep(OPEN_RETRY_SECONDS)
            try:
                await self._open(sites)
            except OperationalError:
                continue
            log.warning("the registry database is reachable again; the registry is open")
            return

    async def stop(self) -> None:
        """Stop trying to open the store; close its connections."""
        if self._opener is not None:
            self._opener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._opener
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def routes(self) -> Sequence[BaseRoute]:
        """Read and admin routes (errors are raised; :mod:`splitlab.service.problems` maps them)."""
        routes: list[BaseRoute] = []
        for kind, plural in PLURAL.items():
            base = f"/api/v1/{plural}"
            routes += [
                Route(base, self._read(kind), methods=["GET"]),
                Route(base, self._create(kind), methods=["POST"]),
                Route(base + "/{name}", self._show(kind), methods=["GET"]),
                Route(base + "/{name}", self._patch(kind), methods=["PATCH"]),
                Route(base + "/{name}/end", self._end(kind), methods=["POST"]),
                Route(base + "/{name}/history", self._history(kind), methods=["GET"]),
            ]
        return routes

    def _read(self, kind: str) -> Handler:
        async def read(request: Request) -> Response:
            query = request.query_params
            fmt = query.get("format", "config")
            authority = query.get("authority", "mediawiki")
            if fmt not in views.FORMATS:
                raise BadRequestError(f"format must be one of {', '.join(views.FORMATS)}")
            if authority not in views.AUTHORITIES:
                raise BadRequestError(f"authority must be one of {', '.join(views.AUTHORITIES)}")
            if kind != "experiment" and authority == "varnish":
                raise BadRequestError("authority=varnish applies to experiments only")
            key = (kind, fmt, "-" if fmt == "analytics" else authority)
            document = await self.cache.get(key)
            self.metrics.config_version.set(document.counter)
            use_gzip = "gzip" in request.headers.get("accept-encoding", "")
            headers = {"ETag": document.gzip_etag if use_gzip else document.etag,
                       "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
            condition = request.headers.get("if-none-match")
            if condition is not None and document.matches(condition):
                return Response(status_code=304, headers=headers)
            if use_gzip:
                headers["Content-Encoding"] = "gzip"
                return Response(document.gzip_body, headers=headers, media_type=JSON_MEDIA_TYPE)
            return Response(document.body, headers=headers, media_type=JSON_MEDIA_TYPE)

        return read

    def _written(self, record: Record, status: int = 200) -> Response:
        self.cache.invalidate()
        now = self.registry.clock()
        return json_response(record_json(record, views.status(record.row, now)), status,
                             {"ETag": record.etag, "Cache-Control": "no-store"})

    def _create(self, kind: str) -> Handler:
        async def create(request: Request) -> Response:
            require_admin(request, self.token)
            who = actor(request)
            row = await read_json(request)
            record = await run_in_threadpool(self.registry.create, kind, row, who)
            response = self._written(record, 201)
            response.headers["Location"] = f"/api/v1/{PLURAL[kind]}/{quote(record.name)}"
            return response

        return create

    def _show(self, kind: str) -> Handler:
        async def show(request: Request) -> Response:
            name = request.path_params["name"]
            record = await run_in_threadpool(self.registry.get, kind, name)
            now = self.registry.clock()
            headers = {"ETag": record.etag, "Cache-Control": "no-cache"}
            condition = request.headers.get("if-none-match")
            if etag_matches(condition, record.etag) and kind != "layer":
                return Response(status_code=304, headers=headers)
            shown = record_json(record, views.status(record.row, now))
            if kind == "layer":  # who holds which bins changes without the layer's revision
                headers["Cache-Control"] = "no-store"
                shown["occupancy"] = await run_in_threadpool(self.registry.layer_occupancy, name)
            return json_response(shown, 200, headers)

        return show

    def _patch(self, kind: str) -> Handler:
        async def patch(request: Request) -> Response:
            require_admin(request, self.token)
            who = actor(request)
            changes = await read_json(request)
            if_match = request.headers.get("if-match")
            name = request.path_params["name"]
            record = await run_in_threadpool(
                self.registry.update, kind, name, changes, if_match, who)
            return self._written(record)

        return patch

    def _end(self, kind: str) -> Handler:
        async def end(request: Request) -> Response:
            require_admin(request, self.token)
            who = actor(request)
            name = request.path_params["name"]
            if_match = request.headers.get("if-match")
            record = await run_in_threadpool(self.registry.end, kind, name, if_match, who)
            return self._written(record)

        return end

    def _history(self, kind: str) -> Handler:
        async def history(request: Request) -> Response:
            name = request.path_params["name"]
            changes = await run_in_threadpool(self.registry.history, kind, name)
            return json_response({"kind": kind, "name": name,
                                  "history": [c.to_json() for c in changes]})

        return history


class RegistryExperiments:
    """The registry's experiments as core objects, for OFREP and client payloads.

    Rebuilt when the registry's change counter moves, which is read only when a write was
    signalled on this host or ``poll_seconds`` passed (see :class:`ChangeWatch`), so a burst of
    evaluations costs a ``stat`` each; empty until the registry has started.
    """

    def __init__(self, component: RegistryComponent, poll_seconds: float = 0.5) -> None:
        self.component = component
        self.watch = ChangeWatch(component.signal, poll_seconds)
        self._items: tuple[Experiment, ...] = ()
        self._counter = -1
        self._stale = False

    def experiments(self) -> Sequence[Experiment]:
        """Every experiment in the registry, ended ones included (callers check activity).

        While the registry database is unreachable the experiments read last are kept (logged
        once per outage): OFREP, payloads and the intake's counters never fail for it."""
        registry = self.component.started_registry
        if registry is None or not self.watch.due():
            return self._items
        try:
            counter = registry.change_counter()
            if counter != self._counter:
                records = registry.records("experiment")
                self._items = tuple(Experiment.from_config(r.row) for r in records)
                self._counter = counter
        except OperationalError as error:
            if not self._stale:
                log.warning("the registry database is unreachable (%s); using the experiments "
                            "read last until it answers", error)
            self._stale = True
            return self._items
        self._stale = False
        return self._items

    def running_groups(self) -> dict[str, frozenset[str]]:
        """Each running experiment's groups (the labels the intake may count)."""
        now = datetime.now(UTC)
        return {e.name: frozenset(e.groups) for e in self.experiments() if e.is_active(now)}
