"""``POST /v1/events``: the event intake over HTTP, with EventGate's contract.

The body is a JSON array of events or one event object, sent as ``application/json`` or
``text/plain`` (what ``navigator.sendBeacon`` sends), plain or with ``Content-Encoding: gzip`` or
``deflate`` (:mod:`splitlab.intake.body`). ``/v1/events/`` is the same route. Answers:

| status | when | body |
| --- | --- | --- |
| 201 | every event was stored durably | empty |
| 202 | ``?hasty=true``: the batch was taken (processed after the answer) | empty |
| 207 | some events were stored, some not | ``{message, invalid: [...], error: [...]}`` |
| 400 | every event invalid; empty; not JSON; not the content encoding | as 207, or ``{message}`` |
| 413 | body larger than the limit (default 4 MiB), inflated or not | ``{message}`` |
| 415 | a content type other than JSON or text; an unknown content encoding | ``{message}`` |
| 500 | no event was stored and at least one failed to store | as 207, nothing internal |
| 503 | the worker holds its cap of events in flight | ``{message}`` |

Each per-event entry is EventGate's ``{status, event, context}``; every answer carries EventGate's
reason phrase in the ``X-Status-Message`` header (:mod:`splitlab.service.intake_answers` makes
the answers); ``message`` in a body is splitlab's own summary "N out of M events were accepted.".
Only ``user-agent`` and ``x-request-id`` are read from the
request (and ``Origin`` for CORS, :mod:`splitlab.service.cors`); the client address and
``X-Forwarded-For`` are never looked at. A 503 carries ``Retry-After``: the cap on events a worker
holds being stored keeps memory bounded when a sink is slow (``SPLITLAB_EVENTS_MAX_IN_FLIGHT``);
a hasty batch the queue has no room for is stored before the answer, like one without ``hasty``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from splitlab.core.model import format_event_time
from splitlab.errors import (
    BadRequestError,
    ConfigError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from splitlab.intake.body import Inflater, parse_json
from splitlab.intake.jetstream import JetStreamSink, subject_prefix
from splitlab.intake.metrics import Exposures, IntakeMetrics
from splitlab.intake.pipeline import EventStatus, Pipeline, Prepared, RequestContext
from splitlab.intake.postgres_log import PostgresSink
from splitlab.intake.schemas import SchemaRepository
from splitlab.intake.sinks import Sink
from splitlab.intake.spool import SpoolingSink
from splitlab.intake.sqlite_log import SQLiteSink
from splitlab.intake.streams import StreamCatalog, load_catalog
from splitlab.service.api_support import RawEndpoint
from splitlab.service.cors import CorsPolicy
from splitlab.service.intake_answers import (
    EMPTY,
    Answer,
    batch_response,
    encoded,
    hasty_answer,
    message,
)
from splitlab.service.settings import Settings

log = logging.getLogger(__name__)
MEDIA_TYPES = frozenset({"", "application/json", "text/plain"})
HASTY_WORKERS = 8
MAX_HELD_BYTES = 64 * 1024 * 1024
"""Request bytes a worker may hold being stored, and (apart) in the hasty queue."""
RETRY_AFTER_SECONDS = 1
MAX_HEADER_VALUE = 256
RUNNING_REFRESH_SECONDS = 1.0
"""How often the intake re-reads which experiments run (the labels of its live counter)."""

Batch = tuple[Prepared, Exposures]
"""A prepared batch and its exposures: what a request or the hasty queue holds to be stored."""


def as_batch(parsed: Any) -> list[Any]:
    """A parsed body as a batch: an array is the batch, anything else one event of it."""
    return parsed if isinstance(parsed, list) else [parsed]


@dataclass(slots=True)
class RequestHead:
    """What the intake reads of a request: six headers and ``?hasty``, nothing else (never the
    client address or ``X-Forwarded-For``)."""

    hasty: bool = False
    content_type: str = ""
    content_length: str = ""
    content_encoding: str = ""
    request_id: str | None = None
    user_agent: str | None = None
    origin: str | None = None

    @classmethod
    def read(cls, scope: Scope) -> RequestHead:
        """One pass over the request's headers (a repeated header: the first one counts)."""
        head = cls(hasty=b"hasty=" in scope["query_string"] and QueryParams(
            scope["query_string"]).get("hasty", "").lower() in ("true", "1"))
        for raw_name, raw_value in reversed(scope["headers"]):
            field = HEAD_FIELDS.get(raw_name)
            if field is not None:
                setattr(head, field, raw_value.decode("latin-1"))
        return head


HEAD_FIELDS = {b"content-type": "content_type", b"content-length": "content_length",
               b"content-encoding": "content_encoding", b"x-request-id": "request_id",
               b"user-agent": "user_agent", b"origin": "origin"}


def utc_now_text() -> str:
    """The current UTC time as ISO 8601 with milliseconds and ``Z`` (how ``meta.dt`` is set)."""
    return format_event_time(datetime.now(UTC))


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
            sinks[name] = SQLiteSink(data / "events.sqlite", sharded=True)
            continue
        if name == "postgresql":
            if not settings.database_url:
                raise ConfigError("SPLITLAB_DATABASE_URL", "the postgresql event sink needs it")
            inner: Sink = PostgresSink(settings.database_url, f"{settings.table_prefix}events")
        elif name == "jetstream":
            inner = JetStreamSink(settings.nats_url or "nats://127.0.0.1:4222",
                                  settings.nats_stream, subject_prefix(settings.nats_stream))
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
        running_groups: Callable[[], Mapping[str, frozenset[str]]] = dict,
    ) -> None:
        self.settings = settings
        self.running_groups = running_groups
        self.metrics = IntakeMetrics(registry)
        self.catalog = load_catalog(settings.streams_file)
        self.sinks = dict(sinks) if sinks is not None else build_sinks(
            settings, self.catalog, lambda name, depth: self.metrics.spool_depth.labels(name)
            .set(depth))
        self.pipeline = Pipeline(
            SchemaRepository.with_directory(settings.schema_repository), self.catalog, self.sinks,
            on_sink_error=lambda sink: self.metrics.sink_errors.labels(sink).inc())
        self.clock = clock
        self.cors = CorsPolicy(settings.events_cors_origins)
        self._queue: asyncio.Queue[tuple[Batch, int, int]] = asyncio.Queue()
        self._queued_events = 0
        self._queued_bytes = 0
        self._in_flight = 0
        self._in_flight_bytes = 0
        self._workers: list[asyncio.Task[None]] = []
        self._latency = {hasty: self.metrics.latency.labels("hasty" if hasty else "sync")
                         for hasty in (False, True)}
        self._running: Mapping[str, frozenset[str]] = {}
        self._running_until = float("-inf")

    def routes(self) -> Sequence[BaseRoute]:
        """``POST /v1/events`` and its CORS preflight ``OPTIONS``, with and without a trailing
        slash (answered directly: a client that does not follow redirects would drop a 307).

        ``POST`` is a plain ASGI endpoint (the hottest route: no ``Request`` object, headers
        read in one pass, the common answers sent as prepared header lists)."""
        return [route for path in ("/v1/events", "/v1/events/") for route in (
            Route(path, RawEndpoint(self.post), methods=["POST"]),
            Route(path, self.preflight, methods=["OPTIONS"]))]

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

    def _context(self, head: RequestHead) -> RequestContext:
        request_id, user_agent = head.request_id, head.user_agent
        return RequestContext(
            dt=self.clock(),
            request_id=request_id[:MAX_HEADER_VALUE] if request_id else None,
            user_agent=user_agent[:MAX_HEADER_VALUE * 4] if user_agent else None)

    async def _read_body(self, head: RequestHead, receive: Receive) -> bytes:
        """The body, inflated per ``Content-Encoding``; reading stops at the size limit
        (:class:`PayloadTooLargeError`), whether the limit is passed before or after inflating."""
        limit = self.settings.events_max_body
        declared = head.content_length
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
        inflater = Inflater(head.content_encoding, limit)
        while True:
            received = await receive()
            if received["type"] == "http.disconnect":
                raise ClientDisconnect()
            inflater.feed(received.get("body", b""))
            if not received.get("more_body", False):
                return inflater.finish()

    async def post(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/events`` as ASGI (see the module docstring for the answers)."""
        started = time.perf_counter()
        head = RequestHead.read(scope)
        cors = self.cors.headers(head.origin)
        try:
            response = await self._handle(head, receive)
        except ClientDisconnect:
            return
        if isinstance(response, Response):
            response.headers.update(cors)
            await response(scope, receive, send)
        else:  # the common answers: status and prepared headers, no body
            status, headers = response
            await send({"type": "http.response.start", "status": status,
                        "headers": [*headers, *encoded(cors)] if cors else headers})
            await send({"type": "http.response.body", "body": b""})
        self._latency[head.hasty].observe(time.perf_counter() - started)

    async def preflight(self, request: Request) -> Response:
        """The CORS preflight of a cross-origin ``fetch`` (see :mod:`splitlab.service.cors`)."""
        return self.cors.preflight(request)

    def _reject(self, reason: str, status: int, text: str, status_text: str | None = None
                ) -> Response:
        self.metrics.rejected.labels(reason).inc()
        return message(status, text, status_text)

    async def _handle(self, head: RequestHead, receive: Receive) -> Answer:
        media = head.content_type.split(";")[0].strip().lower()
        if media not in MEDIA_TYPES:
            return self._reject("media_type", 415, f"content type {media[:100]!r} is not "
                                "accepted; send application/json or text/plain")
        try:
            body = await self._read_body(head, receive)
        except PayloadTooLargeError as error:
            return self._reject("too_large", 413, f"{error}; send smaller batches")
        except UnsupportedMediaTypeError as error:
            return self._reject("content_encoding", 415, str(error))
        except BadRequestError as error:
            return self._reject("content_encoding", 400, str(error))
        if not body.strip():
            return self._reject("empty", 400, "the body is empty; send a JSON array of events",
                                EMPTY)
        try:
            parsed = parse_json(body)
        except BadRequestError as error:
            return self._reject("not_json", 400, str(error))
        if not parsed and isinstance(parsed, list | dict):  # EventGate: [] and {} are empty
            return self._reject("empty", 400, "the body is an empty array or object; send some "
                                "events", EMPTY)
        events = as_batch(parsed)
        del parsed
        count, size = len(events), len(body)
        self.metrics.batch_size.observe(count)
        queued = head.hasty and self._queue_has_room(count, size)
        if not queued and self._at_cap(count, size):
            return self._busy("in_flight")
        batch = self._prepare(events, self._context(head), body)
        del events  # not held while the batch is stored (Prepared.release says why)
        if queued:
            self._queued_events += count
            self._queued_bytes += size
            self.metrics.hasty_queue.set(self._queued_events)
            self._queue.put_nowait((batch, count, size))
            return hasty_answer(count)
        if head.hasty:  # the hasty queue has no room: stored before the answer
            self.metrics.hasty_inline.inc()
        answer = await self._store(batch, count, size)
        return hasty_answer(count) if head.hasty else answer

    def _prepare(self, events: list[Any], context: RequestContext, body: bytes) -> Batch:
        """The checked and enriched batch, with its exposures, its parsed events released."""
        prepared = self.pipeline.prepare(events, context)
        exposures = self.metrics.exposures(events, self._running_groups())
        prepared.release(lambda: as_batch(parse_json(body)))
        return prepared, exposures

    def _running_groups(self) -> Mapping[str, frozenset[str]]:
        """The running experiments' groups (re-read at most every second: the experiment
        counter's labels may lag a registry change by that much)."""
        now = time.monotonic()
        if now >= self._running_until:
            self._running = self.running_groups()
            self._running_until = now + RUNNING_REFRESH_SECONDS
        return self._running

    def _record(self, statuses: list[EventStatus], exposures: Exposures) -> None:
        self.metrics.record(statuses)
        self.metrics.record_experiments(exposures, statuses, self._running)

    def _at_cap(self, count: int, size: int) -> bool:
        """Whether the worker already holds its cap of events or bytes being stored (a slow
        sink must not make memory grow)."""
        return bool(self._in_flight) and (
            self._in_flight + count > self.settings.events_max_in_flight
            or self._in_flight_bytes + size > MAX_HELD_BYTES)

    def _queue_has_room(self, count: int, size: int) -> bool:
        """Whether a hasty batch fits in the hasty queue (bounded in events and bytes, so that
        memory is too). One that does not is stored before the answer, never refused for ever,
        not even when it alone is larger than the queue (only a worker already at its in-flight
        cap answers 503, with ``Retry-After``); EventGate answers 202 whatever became of it."""
        return (self._queued_events + count <= self.settings.events_hasty_queue
                and self._queued_bytes + size <= MAX_HELD_BYTES)

    async def _store(self, batch: Batch, count: int, size: int) -> Answer:
        """Store a prepared batch and answer."""
        self._in_flight += count
        self._in_flight_bytes += size
        try:
            statuses = await self.pipeline.produce(batch[0])
        finally:
            self._in_flight -= count
            self._in_flight_bytes -= size
        self._record(statuses, batch[1])
        return batch_response(statuses)

    def _busy(self, reason: str) -> Response:
        response = self._reject(reason, 503, "the intake is busy; retry later")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    async def _hasty_worker(self) -> None:
        while True:
            batch, count, size = await self._queue.get()
            try:
                self._record(await self.pipeline.produce(batch[0]), batch[1])
            except Exception:  # a hasty batch has no client waiting; log and go on
                log.exception("processing a hasty batch failed")
            finally:
                self._queued_events -= count
                self._queued_bytes -= size
                self.metrics.hasty_queue.set(self._queued_events)
                self._queue.task_done()
