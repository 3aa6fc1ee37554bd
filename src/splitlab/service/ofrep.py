"""OFREP: the OpenFeature Remote Evaluation Protocol, so every OpenFeature SDK can use splitlab.

Routes (as the OFREP OpenAPI document specifies):

- ``POST /ofrep/v1/evaluate/flags/{key}`` — one flag.
- ``POST /ofrep/v1/evaluate/flags`` — every flag the client should know, with ``ETag`` and
  ``If-None-Match`` → 304.

An experiment is a string flag whose key is its name. The request is
``{"context": {"targetingKey": "<identifier>", "site": "<optional site>", ...}}``; the targeting
key is the identifier of the experiment's sampling unit, and the whole context (``site``,
``platform``, ``edit_count``, ...) is what targeting conditions see. The core's
:class:`~splitlab.core.resolution.Resolution` is mapped by :mod:`splitlab.sdk.evaluation`, as
the OpenFeature provider maps it:

- enrolled: ``value`` = ``variant`` = the group, ``reason: "SPLIT"``;
- not enrolled (not sampled, held out, outside its layer range, not targeted): ``value`` =
  ``variant`` = the first group (the control, by convention), ``reason: "DEFAULT"`` — the unit
  sees the default experience and must not be counted (``metadata.enrolled`` is false; the
  variant is set because some OFREP clients require it);
- outside its start/end window: the same with ``reason: "DISABLED"``.

``metadata`` carries ``enrolled``, splitlab's ``reason`` and, when enrolled, ``subject_id``,
``exposure_version``, ``sampling_unit``, ``stream_name`` and ``schema_id`` (what an exposure
event needs).
The bulk endpoint lists the active experiments that run on the client (all of them when no
client list is configured). Errors are ``{key, errorCode, errorDetails}``: ``FLAG_NOT_FOUND``
(404), ``PARSE_ERROR`` / ``INVALID_CONTEXT`` / ``TARGETING_KEY_MISSING`` (400); an internal
failure is ``500 {errorDetails}`` (one flag of a bulk answer: ``errorCode: GENERAL``). With an
API key configured, no credentials → 401 and wrong ones → 403; over the rate limit → 429 with
``Retry-After``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from splitlab.core.model import Experiment
from splitlab.core.resolution import resolve
from splitlab.sdk.client import utc_now
from splitlab.sdk.client_payload import PayloadOptions, client_experiments
from splitlab.sdk.evaluation import flag_metadata, openfeature_reason
from splitlab.service.api_support import etag_matches, json_response
from splitlab.service.client_delivery import (
    ApiKeyGate,
    Clock,
    ExperimentSource,
    read_json_object,
)
from splitlab.service.rate_limit import RateLimiter

log = logging.getLogger(__name__)
_INTERNAL = {"errorDetails": "internal error while evaluating"}


class EvaluationError(ValueError):
    """A request OFREP answers with 400 and an ``errorCode``."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass(frozen=True, slots=True)
class Context:
    """The parts of an OFREP evaluation context splitlab uses."""

    targeting_key: str
    site: str | None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """The whole evaluation context, for targeting conditions."""


def parse_context(body: Mapping[str, Any]) -> Context:
    """The context of a request body; :class:`EvaluationError` names what is wrong."""
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise EvaluationError("INVALID_CONTEXT", "'context' must be an object")
    key = context.get("targetingKey")
    if key is None or key == "":
        raise EvaluationError("TARGETING_KEY_MISSING", "context.targetingKey is required")
    if not isinstance(key, str):
        raise EvaluationError("INVALID_CONTEXT", "context.targetingKey must be a string")
    site = context.get("site")
    if site is not None and not isinstance(site, str):
        raise EvaluationError("INVALID_CONTEXT", "context.site must be a string")
    return Context(key, site, context)


def evaluate(experiment: Experiment, context: Context, now: datetime) -> dict[str, Any]:
    """The OFREP evaluation success of ``experiment`` for ``context`` (see the module doc)."""
    found = resolve(context.targeting_key, experiment, context.site, context.attributes,
                    now=now)
    group = found.group or experiment.groups[0]
    return {"key": experiment.name, "value": group, "variant": group,
            "reason": openfeature_reason(found), "metadata": flag_metadata(found)}


def evaluate_or_general(experiment: Experiment, context: Context, now: datetime) -> dict[str, Any]:
    """:func:`evaluate`, or a ``GENERAL`` failure for this flag alone if evaluation breaks."""
    try:
        return evaluate(experiment, context, now)
    except Exception:
        log.exception("OFREP evaluation of %r failed", experiment.name)
        return {"key": experiment.name, "errorCode": "GENERAL", **_INTERNAL}


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass(slots=True)
class OfrepComponent:
    """The OFREP endpoints over an experiment source."""

    source: ExperimentSource
    options: PayloadOptions = field(default_factory=PayloadOptions)
    gate: ApiKeyGate = field(default_factory=lambda: ApiKeyGate(None))
    limiter: RateLimiter | None = None
    clock: Clock = utc_now

    def routes(self) -> Sequence[BaseRoute]:
        """Single and bulk evaluation."""
        return [Route("/ofrep/v1/evaluate/flags", self.bulk, methods=["POST"]),
                Route("/ofrep/v1/evaluate/flags/{key:path}", self.single, methods=["POST"])]

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to release."""

    def _refuse(self, request: Request) -> Response | None:
        refused = self.gate.refuse(request)
        if refused is not None or self.limiter is None:
            return refused
        client = self.gate.credential(request) or (request.client.host if request.client else "")
        wait = self.limiter.acquire(client)
        if wait > 0:
            return json_response({"errorDetails": "rate limit reached"}, 429,
                         {"Retry-After": str(max(1, int(wait + 0.999)))})
        return None

    async def single(self, request: Request) -> Response:
        """``POST /ofrep/v1/evaluate/flags/{key}``."""
        key = request.path_params["key"]
        refused = self._refuse(request)
        if refused is not None:
            return refused
        try:
            body = await read_json_object(request)
        except ValueError as error:
            return json_response(
                {"key": key, "errorCode": "PARSE_ERROR", "errorDetails": str(error)}, 400)
        try:
            experiment = next((e for e in self.source.experiments() if e.name == key), None)
        except Exception:
            log.exception("OFREP: the experiment source failed")
            return json_response(_INTERNAL, 500)
        if experiment is None:
            return json_response({"key": key, "errorCode": "FLAG_NOT_FOUND",
                                  "errorDetails": f"no experiment named {key!r}"}, 404)
        try:
            context = parse_context(body)
        except EvaluationError as error:
            return json_response(
                {"key": key, "errorCode": error.code, "errorDetails": error.details}, 400)
        result = evaluate_or_general(experiment, context, self.clock())
        return json_response(result, 500 if "errorCode" in result else 200)

    async def bulk(self, request: Request) -> Response:
        """``POST /ofrep/v1/evaluate/flags``, with ``ETag`` / ``If-None-Match``."""
        refused = self._refuse(request)
        if refused is not None:
            return refused
        try:
            context = parse_context(await read_json_object(request))
        except EvaluationError as error:
            return json_response({"errorCode": error.code, "errorDetails": error.details}, 400)
        except ValueError as error:
            return json_response({"errorCode": "PARSE_ERROR", "errorDetails": str(error)}, 400)
        now = self.clock()
        try:
            chosen = client_experiments(self.source.experiments(), now, self.options)
        except Exception:
            log.exception("OFREP: the experiment source failed")
            return json_response(_INTERNAL, 500)
        flags = [evaluate_or_general(e, context, now) for e in chosen]
        body = json.dumps({"flags": flags}, separators=(",", ":"), ensure_ascii=False).encode()
        etag = _etag(body)
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, 200, headers=headers, media_type="application/json")
