"""``POST /v1/events``: the event intake over HTTP, with EventGate's contract.

The body is a JSON array of events or one event object, sent as ``application/json`` or
``text/plain`` (what ``navigator.sendBeacon`` sends). Answers:

| status | when | body |
| --- | --- | --- |
| 201 | every event was stored durably | empty |
| 202 | ``?hasty=true``: the batch was queued (processed after the answer) | empty |
| 207 | some events were stored, some not | ``{message, invalid: [...], error: [...]}`` |
| 400 | every event was invalid; empty body; bytes that are not JSON | as 207, or ``{message}`` |
| 413 | body larger than the limit (default 4 MiB) | ``{message}`` |
| 415 | a content type other than JSON or text | ``{message}`` |
| 500 | no event was stored and at least one failed to store | as 207, nothing internal |
| 503 | the worker holds its cap of events in flight (hasty: queue full) | ``{message}`` |

Each per-event entry is EventGate's ``{status, event, context}``; ``message`` is EventGate's
summary "N out of M events were accepted.". Only ``user-agent`` and ``x-request-id`` are read
from the request (and ``Origin`` for CORS, :mod:`splitlab.service.cors`); the client address and
``X-Forwarded-For`` are never looked at. A 503 carries ``Retry-After``; the caps keep memory
bounded when a sink is slow (``SPLITLAB_EVENTS_MAX_IN_FLIGHT``, ``SPLITLAB_EVENTS_HASTY_QUEUE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from splitlab.core.model import format_event_time
from splitlab.errors import ConfigError, PayloadTooLargeError
from splitlab.intake.jetstream import JetStreamSink
from splitlab.intake.metrics import IntakeMetrics
from splitlab.intake.pipeline import EventStatus, Pipeline, RequestContext
from splitlab.intake.postgres_log import PostgresSink
from splitlab.intake.schemas import SchemaRepository
from splitlab.intake.sinks import Sink
from splitlab.intake.spool import SpoolingSink
from splitlab.intake.sqlite_log import SQLiteSink
from splitlab.intake.streams import StreamCatalog, load_catalog
from splitlab.service.api_support import JSON_MEDIA_TYPE, json_response, read_body
from splitlab.service.cors import CorsPolicy
from splitlab.service.settings import Settings

log = logging.getLogger(__name__)
MEDIA_TYPES = frozenset({"", "application/json", "text/plain"})
HASTY_WORKERS = 8
MAX_HELD_BYTES = 64 * 1024 * 1024
"""Request bytes a worker may hold being stored, and (apart) in the hasty queue."""
RETRY_AFTER_SECONDS = 1
MAX_HEADER_VALUE = 256


def utc_now_text() -> str:
    """The current UTC time as ISO 8601 with milliseconds and ``Z`` (how ``meta.dt`` is set)."""
    return format_event_time(datetime.now(UTC))


def message(status: int, text: str, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON ``{message}`` answer."""
    return json_response({"message": text}, status, headers)


def batch_response(statuses: Sequence[EventStatus]) -> Response:
    """EventGate's answer for a processed batch (201, 207, 400 or 500)."""
    accepted = sum(1 for s in statuses if s.status == "success")
    if accepted == len(statuses):
        return Response(status_code=201)
    invalid = [s.to_json() for s in statuses if s.status == "invalid"]
    failed = [s.to_json() for s in statuses if s.status == "error"]
    code = 207 if accepted else (500 if failed else 400)
    body = {"message": f"{accepted} out of {len(statuses)} events were accepted.",
            "invalid": invalid, "error": failed}
    try:
        content = orjson.dumps(body)
    except orjson.JSONEncodeError:  # an event nested too deeply to echo: answer null for it
        for entry in (*invalid, *failed):
            if not _writable({"invalid": [entry]}):  # at the depth it has in the body
                entry["event"] = None
        content = orjson.dumps(body)
    return Response(content, code, media_type=JSON_MEDIA_TYPE)


def _writable(value: Any) -> bool:
    """Whether orjson can write ``value`` (it stops at 254 levels of nesting)."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


def build_sinks(
    settings: Settings, catalog: StreamCatalog, on_depth: Callable[[str, int], None]
) -> dict[str, Sink]:
    """The sinks the catalog's streams use, ``default`` being ``settings.events_sink``.

    Remote sinks (PostgreSQL, JetStream) get a local spool in the data directory.
    """
    names = set(catalog.sinks)
    if "default" in names:
        names = (names - {"default"}) | {settings.events_sink}
    sinks: dict[str, Sink] = {}
    data = settings.data_dir
    for name in sorted(names):
        if name == "sqlite":
            sinks[name] = SQLiteSink(data / "events.sqlite")
            continue
        if name == "postgresql":
            if not settings.database_url:
                raise ConfigError("SPLITLAB_DATABASE_URL", "the postgresql event sink needs it")
            inner: Sink = PostgresSink(settings.database_url, f"{settings.table_prefix}events")
        elif name == "jetstream":
            inner = JetStreamSink(settings.nats_url or "nats://127.0.0.1:4222")
        else:
            raise ConfigError("SPLITLAB_EVENTS_SINK", f"unknown sink {name!r}")
        spool = SQLiteSink(data / f"spool-{name}.sqlite")
        sinks[name] = SpoolingSink(inner, spool, name, deadline=settings.events_sink_timeout,
                                   on_depth=on_depth)
    if "default" in catalog.sinks:
        sinks["default"] = sinks[settings.events_sink]
    return sinks


class IntakeComponent:
    """The event intake area of the service (a :class:`~splitlab.service.app.Component`)."""

    def __init__(
        self, settings: Settings, registry: CollectorRegistry,
        sinks: Mapping[str, Sink] | None = None, clock: Callable[[], str] = utc_now_text,
    ) -> None:
        self.settings = settings
        self.metrics = IntakeMetrics(registry)
        self.catalog = load_catalog(settings.streams_file)
        self.sinks = dict(sinks) if sinks is not None else build_sinks(
            settings, self.catalog, lambda name, depth: self.metrics.spool_depth.labels(name)
            .set(depth))
        self.pipeline = Pipeline(
            SchemaRepository(), self.catalog, self.sinks,
            on_sink_error=lambda sink: self.metrics.sink_errors.labels(sink).inc())
        self.clock = clock
        self.cors = CorsPolicy(settings.events_cors_origins)
        self._queue: asyncio.Queue[tuple[list[Any], RequestContext, int]] = asyncio.Queue()
        self._queued_events = 0
        self._queued_bytes = 0
        self._in_flight = 0
        self._in_flight_bytes = 0
        self._workers: list[asyncio.Task[None]] = []

    def routes(self) -> Sequence[BaseRoute]:
        """``POST /v1/events`` (and its CORS preflight, ``OPTIONS``)."""
        return [Route("/v1/events", self.post_events, methods=["POST"]),
                Route("/v1/events", self.preflight, methods=["OPTIONS"])]

    def _unique_sinks(self) -> list[Sink]:
        unique: dict[int, Sink] = {}
        for sink in self.sinks.values():
            unique.setdefault(id(sink), sink)
        return list(unique.values())

    async def start(self) -> None:
        """Open the sinks and start the hasty-mode workers."""
        for sink in self._unique_sinks():
            await sink.start()
        self._workers = [asyncio.create_task(self._hasty_worker()) for _ in range(HASTY_WORKERS)]

    async def stop(self) -> None:
        """Finish queued hasty batches, then close the sinks."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._queue.join(), timeout=10)
        for worker in self._workers:
            worker.cancel()
        for sink in self._unique_sinks():
            try:
                await sink.close()
            except Exception:  # stop must not raise; the sink's own data is already durable
                log.exception("closing an event sink failed")

    def _context(self, request: Request) -> RequestContext:
        headers = request.headers
        request_id = headers.get("x-request-id")
        user_agent = headers.get("user-agent")
        return RequestContext(
            dt=self.clock(),
            request_id=request_id[:MAX_HEADER_VALUE] if request_id else None,
            user_agent=user_agent[:MAX_HEADER_VALUE * 4] if user_agent else None)

    async def _read_body(self, request: Request) -> bytes | None:
        """The body, or None when it exceeds the limit (reading stops there)."""
        try:
            return await read_body(request, self.settings.events_max_body)
        except PayloadTooLargeError:
            return None

    async def post_events(self, request: Request) -> Response:
        """Accept a batch of events (see the module docstring for the answers)."""
        started = time.perf_counter()
        hasty = request.query_params.get("hasty", "").lower() in ("true", "1")
        response = await self._handle(request, hasty)
        response.headers.update(self.cors.headers(request))
        self.metrics.latency.labels("hasty" if hasty else "sync").observe(
            time.perf_counter() - started)
        return response

    async def preflight(self, request: Request) -> Response:
        """The CORS preflight of a cross-origin ``fetch`` (see :mod:`splitlab.service.cors`)."""
        return self.cors.preflight(request)

    def _reject(self, reason: str, status: int, text: str) -> Response:
        self.metrics.rejected.labels(reason).inc()
        return message(status, text)

    async def _handle(self, request: Request, hasty: bool) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in MEDIA_TYPES:
            return self._reject("media_type", 415, f"content type {media[:100]!r} is not "
                                "accepted; send application/json or text/plain")
        body = await self._read_body(request)
        if body is None:
            return self._reject("too_large", 413, "the body is larger than "
                                f"{self.settings.events_max_body} bytes; send smaller batches")
        if not body.strip():
            return self._reject("empty", 400, "the body is empty; send a JSON array of events")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            return self._reject("not_json", 400, f"the body is not valid JSON: {error}")
        events = parsed if isinstance(parsed, list) else [parsed]
        if not events:
            return self._reject("empty", 400, "the body is an empty array; send some events")
        self.metrics.batch_size.observe(len(events))
        context = self._context(request)
        if hasty:
            return self._enqueue(events, context, len(body))
        return await self._store(events, context, len(body))

    async def _store(self, events: list[Any], context: RequestContext, size: int) -> Response:
        """Process a batch and answer; 503 when the worker already holds its cap of events or
        bytes being stored (a slow sink must not make memory grow)."""
        if self._in_flight and (
                self._in_flight + len(events) > self.settings.events_max_in_flight
                or self._in_flight_bytes + size > MAX_HELD_BYTES):
            return self._busy("in_flight")
        self._in_flight += len(events)
        self._in_flight_bytes += size
        try:
            statuses = await self.pipeline.process(events, context)
        finally:
            self._in_flight -= len(events)
            self._in_flight_bytes -= size
        self.metrics.record(statuses)
        return batch_response(statuses)

    def _busy(self, reason: str) -> Response:
        self.metrics.rejected.labels(reason).inc()
        return message(503, "the intake is busy; retry later",
                       {"Retry-After": str(RETRY_AFTER_SECONDS)})

    def _enqueue(self, events: list[Any], context: RequestContext, size: int) -> Response:
        if (self._queued_events + len(events) > self.settings.events_hasty_queue
                or self._queued_bytes + size > MAX_HELD_BYTES):
            return self._busy("queue_full")
        self._queued_events += len(events)
        self._queued_bytes += size
        self.metrics.hasty_queue.set(self._queued_events)
        self._queue.put_nowait((events, context, size))
        return Response(status_code=202)

    async def _hasty_worker(self) -> None:
        while True:
            events, context, size = await self._queue.get()
            try:
                self.metrics.record(await self.pipeline.process(events, context))
            except Exception:  # a hasty batch has no client waiting; log and go on
                log.exception("processing a hasty batch failed")
            finally:
                self._queued_events -= len(events)
                self._queued_bytes -= size
                self.metrics.hasty_queue.set(self._queued_events)
                self._queue.task_done()
