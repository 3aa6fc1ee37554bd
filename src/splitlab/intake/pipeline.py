"""The intake pipeline, without HTTP: check → enrich → validate → produce.

For each event of a batch: it must be an object whose ``meta.stream`` is a configured stream and
whose ``$schema`` names a known schema with that stream's ``schema_title``. The server then sets
``meta.dt`` (receive time — before validation, because the schemas require it and clients leave it
to the intake), ``meta.id`` (a UUID when absent or empty), ``meta.request_id`` (from
``x-request-id``, where the stream enriches) and the user agent (only where the stream keeps it;
otherwise any user agent, ``agent.ua_string`` included, is removed). Client IPs are never stored:
IP-bearing request headers and ``http.client_ip`` are removed from every event
(:mod:`splitlab.intake.privacy`). Valid events go to their stream's sink; invalid ones become
error events on the error stream, scrubbed the same way. Statuses follow EventGate: ``success``,
``invalid`` or ``error``; an invalid event's context is ``{message, errors, errorsText}``
(:mod:`splitlab.intake.violations`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from splitlab.errors import InvalidEventError
from splitlab.intake.privacy import NOT_RECORDED, error_event, scrub
from splitlab.intake.schemas import Schema, SchemaRepository
from splitlab.intake.sinks import Sink, StoredEvent
from splitlab.intake.streams import StreamCatalog, StreamConfig
from splitlab.intake.violations import errors_text, required, violation, wrong_type

log = logging.getLogger(__name__)
TOO_DEEP = NOT_RECORDED
STORE_FAILED = "the event could not be stored; retry later"
MAX_ROUTES = 1024
"""How many (stream, ``$schema`` spelling) pairs a pipeline remembers as checked."""

Status = Literal["success", "invalid", "error"]


# A random hex digit with its two high bits set to the RFC 9562 variant 10 (keeps two bits).
_VARIANT = {f"{n:x}": f"{8 | n & 3:x}" for n in range(16)}
_forks = [0]
"""How many times this process was forked into (a child's count differs from its parent's)."""
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class TimeOrderedIds:
    """Makes version 7 UUIDs (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Ids the intake assigns sort by time, so the event log's unique index on ``meta.id`` grows at
    its right edge instead of dirtying a random page per event; 74 random bits per millisecond
    keep them unique across workers. Randomness is read from ``os.urandom`` in blocks (one system
    call per 400 ids) and used as hex text, the time part is formatted once per millisecond, a
    batch's ids are made in one call (:meth:`take`), and a block is refilled after a fork so that
    two processes never share one. Not thread-safe: use one per event loop.
    """

    BLOCK = 10 * 400

    def __init__(self) -> None:
        self._hex = ""
        self._used = 0
        self._forks = -1
        self._millis = -1
        self._head = ""

    def take(self, count: int) -> list[str]:
        """``count`` new ids, made together: one clock read and one slice of randomness for the
        batch (its ids share a millisecond and differ in their 74 random bits)."""
        used, size = self._used, 20 * count
        if used + size > len(self._hex) or self._forks != _forks[0]:  # (getpid: a system call)
            block = max(self.BLOCK, size // 2)
            self._hex, used, self._forks = os.urandom(block).hex(), 0, _forks[0]
        hexed = self._hex
        self._used = used + size
        millis = time.time_ns() // 1_000_000
        if millis != self._millis:
            text = f"{millis:012x}"
            self._millis, self._head = millis, f"{text[:8]}-{text[8:]}-7"
        head = self._head
        # 48 bits of milliseconds | version 7 | 12 random bits | variant 10 | 62 random bits
        return [f"{head}{hexed[k + 1:k + 4]}-{_VARIANT[hexed[k + 4]]}{hexed[k + 5:k + 8]}-"
                f"{hexed[k + 8:k + 20]}" for k in range(used, used + size, 20)]

    def __call__(self) -> str:
        return self.take(1)[0]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the intake takes from the HTTP request: receive time and two headers, nothing else."""

    dt: str
    request_id: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class EventStatus:
    """EventGate's per-event outcome: ``{status, event, context}``."""

    status: Status
    event: Any
    context: Mapping[str, Any] | None = None
    stream: str = ""

    def to_json(self) -> dict[str, Any]:
        """The wire form of this status."""
        return {"status": self.status, "event": self.event, "context": self.context}


@dataclass(slots=True)
class Prepared:
    """A checked and enriched batch: what to store, and the statuses known so far.

    ``stored`` holds, per sink name, the positions of the batch's valid events and their stored
    forms (two lists side by side: no object per event beyond the stored form itself)."""

    events: Sequence[Any]
    statuses: list[EventStatus | None]
    stored: dict[str, tuple[list[int], list[StoredEvent]]] = field(default_factory=dict)
    errors: list[StoredEvent] = field(default_factory=list)
    remake: Callable[[], Sequence[Any]] | None = None

    def release(self, remake: Callable[[], Sequence[Any]]) -> None:
        """Let go of the parsed events; ``remake`` makes them again should a status need them
        (a failed write answers with its events as sent).

        A batch's parsed events take several times the memory of its body. Held while the write
        is awaited, the batches of all the requests waiting together outgrow the processor's
        caches, and making and freeing the next ones costs far more (docs/benchmarks.md, "Issue
        11, sixth pass")."""
        self.events, self.remake = (), remake

    def raw(self) -> Sequence[Any]:
        """The batch's events as sent (made again after :meth:`release`)."""
        if self.remake is not None:
            self.events, self.remake = self.remake(), None
        return self.events


async def gather_outcomes(writes: list[Awaitable[None]]) -> list[BaseException | None]:
    """Each write's outcome (``None`` or its exception); one write is awaited as it is, without
    the task ``asyncio.gather`` would make for it (the common batch has one sink)."""
    if len(writes) != 1:
        return await asyncio.gather(*writes, return_exceptions=True)
    try:
        await writes[0]
    except Exception as error:
        return [error]
    return [None]


class Pipeline:
    """Validates, enriches and stores batches of events for the configured streams."""

    def __init__(
        self,
        schemas: SchemaRepository,
        catalog: StreamCatalog,
        sinks: Mapping[str, Sink],
        emitter_id: str = "splitlab",
        new_ids: Callable[[int], list[str]] | None = None,
        on_sink_error: Callable[[str], None] = lambda sink: None,
    ) -> None:
        missing = sorted(catalog.sinks - set(sinks))
        if missing:
            raise ValueError(f"streams use sinks that were not provided: {missing}")
        self.schemas = schemas
        self.catalog = catalog
        self.sinks = sinks
        self.emitter_id = emitter_id
        self.new_ids = new_ids or TimeOrderedIds().take
        self.on_sink_error = on_sink_error
        self._routes: dict[tuple[str, str], tuple[StreamConfig, Schema]] = {}

    def prepare(self, events: Sequence[Any], context: RequestContext) -> Prepared:
        """Check and enrich every event (pure apart from ids); nothing is stored yet.

        One id is made per position up front (:meth:`TimeOrderedIds.take`: the batch's ids
        together); an event that brings its own ``meta.id`` leaves its one unused, and an invalid
        event's goes to its error event."""
        prepared = Prepared(events, [None] * len(events))
        ids = self.new_ids(len(events))
        stored, routes = prepared.stored, self._routes
        for index, raw in enumerate(events):
            try:
                try:  # the common case: a stream and schema this pipeline has checked before
                    stream, schema = routes[raw["meta"]["stream"], raw["$schema"]]
                except (KeyError, TypeError, IndexError):
                    stream, schema = self._route(raw)
                event = self._accept(raw, stream, schema, context, ids[index])
            except InvalidEventError as error:
                message = str(error)
                details = {"message": message, "errors": list(error.violations),
                           "errorsText": errors_text(error.violations)}
                prepared.statuses[index] = EventStatus(
                    "invalid", raw, details, self._claimed_stream(raw))
                prepared.errors.append(self._error_event(raw, message, context, ids[index]))
                continue
            positions, accepted = stored.get(stream.sink) or stored.setdefault(
                stream.sink, ([], []))
            positions.append(index)
            accepted.append(event)
        return prepared

    def _claimed_stream(self, raw: Any) -> str:
        """The configured stream ``raw`` names, or "" (client text never becomes a label)."""
        meta = raw.get("meta") if isinstance(raw, dict) else None
        name = meta.get("stream") if isinstance(meta, dict) else None
        return name if isinstance(name, str) and self.catalog.get(name) is not None else ""

    def _stream(self, raw: Any) -> StreamConfig:
        """The configured stream ``raw`` names; :class:`InvalidEventError` otherwise."""
        if not isinstance(raw, dict):
            raise InvalidEventError("an event must be a JSON object", [wrong_type([], "object")])
        meta = raw.get("meta")
        name = meta.get("stream") if isinstance(meta, dict) else None
        if not isinstance(name, str):
            if "meta" not in raw:
                found = required([], "meta")
            elif not isinstance(meta, dict):
                found = wrong_type(["meta"], "object")
            else:
                found = (required(["meta"], "stream") if "stream" not in meta
                         else wrong_type(["meta", "stream"], "string"))
            raise InvalidEventError("meta.stream is missing (the event names no stream)",
                                    [found])
        stream = self.catalog.get(name)
        if stream is None or stream.name == self.catalog.error_stream:
            message = f"stream {name[:200]!r} is not configured"
            raise InvalidEventError(message, [violation(
                "stream", ["meta", "stream"], message, {"stream": name[:200]})])
        return stream

    def _route(self, raw: Any) -> tuple[StreamConfig, Schema]:
        """The stream ``raw`` names and the schema it claims, checked to belong together
        (:class:`InvalidEventError` otherwise); remembered for the next event naming both."""
        stream = self._stream(raw)
        claimed = raw.get("$schema")
        schema = self.schemas.get(claimed)
        if schema.title != stream.schema_title:
            message = (f"schema {schema.id} (title {schema.title!r}) is not allowed on stream "
                       f"{stream.name!r}, which takes {stream.schema_title!r}")
            raise InvalidEventError(message, [violation(
                "stream", ["$schema"], message,
                {"schemaTitle": schema.title, "allowedSchemaTitle": stream.schema_title})])
        if isinstance(claimed, str) and len(claimed) <= 256 and len(self._routes) < MAX_ROUTES:
            self._routes[stream.name, claimed] = stream, schema  # bounded: clients spell ids
        return stream, schema

    @staticmethod
    def _accept(raw: dict[str, Any], stream: StreamConfig, schema: Schema,
                context: RequestContext, new_id: str) -> StoredEvent:
        """``raw`` enriched, scrubbed and validated, as stored (``new_id`` where it has no
        ``meta.id``)."""
        event = dict(raw)
        meta = event["meta"] = dict(raw["meta"])
        meta["dt"] = context.dt
        if not meta.get("id"):  # absent, null or "": an empty id would collapse retries
            meta["id"] = new_id
        if stream.enrich_headers and context.request_id:
            meta["request_id"] = context.request_id
        scrub(event, stream.keep_user_agent)
        if stream.keep_user_agent and context.user_agent:
            http = event.setdefault("http", {})
            headers = http.get("request_headers", {}) if isinstance(http, dict) else None
            if isinstance(http, dict) and isinstance(headers, dict):
                http["request_headers"] = {**headers, "user-agent": context.user_agent}
        try:
            body = orjson.dumps(event)
        except orjson.JSONEncodeError:  # parsing allows 1024 levels, writing JSON 254
            raise InvalidEventError(TOO_DEEP, [violation("depth", [], TOO_DEEP)]) from None
        checked = schema.validate(event)
        if checked is not event:  # date-times rewritten to RFC 3339
            body = orjson.dumps(checked)
        return StoredEvent(meta["id"], stream.name, context.dt, body)

    def _error_event(self, raw: Any, message: str, context: RequestContext, event_id: str
                     ) -> StoredEvent:
        """An error event recording ``raw`` and why it was refused, scrubbed by the rules of the
        stream it names (none kept when it names no configured stream) and the error stream."""
        target = self.catalog.get(self._claimed_stream(raw))
        keep = bool(target and target.keep_user_agent and self.catalog.error.keep_user_agent)
        meta = {"stream": self.catalog.error_stream, "dt": context.dt}
        if context.request_id:
            meta["request_id"] = context.request_id
        return error_event(raw, message, keep, (event_id, self.emitter_id), meta)

    async def produce(self, prepared: Prepared) -> list[EventStatus]:
        """Store the prepared batch; each accepted event's status says whether it is durable.

        Error events are stored alongside, but a failure to store them does not change the
        statuses (the client's events were invalid either way).
        """
        names = list(prepared.stored)
        writes: list[Awaitable[None]] = [
            self.sinks[n].write(prepared.stored[n][1]) for n in names]
        if prepared.errors:
            names.append("")
            writes.append(self.sinks[self.catalog.error.sink].write(prepared.errors))
        results = await gather_outcomes(writes)
        statuses = prepared.statuses
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            if isinstance(result, Exception):
                sink = name or self.catalog.error.sink
                log.warning("sink %s failed: %s", sink, result)
                self.on_sink_error(sink)
            if not name:
                continue
            positions, stored = prepared.stored[name]
            if result is None:  # immutable: one status per stream serves all its events
                success: dict[str, EventStatus] = {}
                for position, event in zip(positions, stored, strict=True):
                    status = success.get(event.stream)
                    if status is None:
                        status = success[event.stream] = EventStatus(
                            "success", None, None, event.stream)
                    statuses[position] = status
            else:
                raw = prepared.raw()
                for position, event in zip(positions, stored, strict=True):
                    statuses[position] = EventStatus(
                        "error", raw[position], {"message": STORE_FAILED}, event.stream)
        return [s for s in statuses if s is not None]

    async def process(self, events: Sequence[Any], context: RequestContext) -> list[EventStatus]:
        """:meth:`prepare` then :meth:`produce`."""
        return await self.produce(self.prepare(events, context))
