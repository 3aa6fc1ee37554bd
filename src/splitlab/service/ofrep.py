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
client list is configured). Errors are raised from the tree and answered in OFREP's shape by
:mod:`splitlab.service.problems`: ``{key, errorCode, errorDetails}`` with ``FLAG_NOT_FOUND``
(404), ``PARSE_ERROR`` / ``INVALID_CONTEXT`` / ``TARGETING_KEY_MISSING`` (400; text that is not
Unicode, such as a lone surrogate in the targeting key, is ``INVALID_CONTEXT``); an internal
failure is ``500 {errorDetails}``. One flag of a bulk answer that cannot be evaluated is
``{key, errorCode: GENERAL, errorDetails}``, the others are still answered, and the request logs
one line however many flags failed. With an API key configured, no credentials → 401 and wrong
ones → 403; over the rate limit → 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from splitlab.core.model import Experiment
from splitlab.core.resolution import resolve
from splitlab.errors import EvaluationError, NotFoundError
from splitlab.sdk.client import utc_now
from splitlab.sdk.client_payload import PayloadOptions, client_experiments
from splitlab.sdk.evaluation import flag_metadata, openfeature_reason
from splitlab.service.api_support import (
    JSON_MEDIA_TYPE,
    etag_matches,
    json_response,
    read_json_object,
)
from splitlab.service.client_access import ApiKeyGate, Clock, ExperimentSource

log = logging.getLogger(__name__)
_GENERAL = {"errorCode": "GENERAL", "errorDetails": "internal error while evaluating"}


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


def evaluate_all(experiments: Sequence[Experiment], context: Context, now: datetime
                 ) -> list[dict[str, Any]]:
    """:func:`evaluate` for each experiment; one that breaks is a ``GENERAL`` failure for that
    flag alone, and the failures of one call are logged as one line."""
    results: list[dict[str, Any]] = []
    failed: list[str] = []
    first: Exception | None = None
    for experiment in experiments:
        try:
            results.append(evaluate(experiment, context, now))
        except Exception as error:
            first = first or error
            failed.append(experiment.name)
            results.append({"key": experiment.name, **_GENERAL})
    if first is not None:
        log.error("OFREP evaluation failed for %d of %d flags (%s)", len(failed),
                  len(results), ", ".join(failed[:5]), exc_info=first)
    return results


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass(slots=True)
class OfrepComponent:
    """The OFREP endpoints over an experiment source."""

    source: ExperimentSource
    options: PayloadOptions = field(default_factory=PayloadOptions)
    gate: ApiKeyGate = field(default_factory=lambda: ApiKeyGate(None))
    clock: Clock = utc_now

    def routes(self) -> Sequence[BaseRoute]:
        """Single and bulk evaluation."""
        return [Route("/ofrep/v1/evaluate/flags", self.bulk, methods=["POST"]),
                Route("/ofrep/v1/evaluate/flags/{key:path}", self.single, methods=["POST"])]

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to release."""

    async def single(self, request: Request) -> Response:
        """``POST /ofrep/v1/evaluate/flags/{key}``."""
        key = request.path_params["key"]
        self.gate.check(request)
        body = await read_json_object(request)
        experiment = next((e for e in self.source.experiments() if e.name == key), None)
        if experiment is None:
            raise NotFoundError(f"no experiment named {key!r}")
        [result] = evaluate_all([experiment], parse_context(body), self.clock())
        return json_response(result, 500 if "errorCode" in result else 200)

    async def bulk(self, request: Request) -> Response:
        """``POST /ofrep/v1/evaluate/flags``, with ``ETag`` / ``If-None-Match``."""
        self.gate.check(request)
        context = parse_context(await read_json_object(request))
        now = self.clock()
        chosen = client_experiments(self.source.experiments(), now, self.options)
        body = orjson.dumps({"flags": evaluate_all(chosen, context, now)})
        etag = _etag(body)
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, 200, headers=headers, media_type=JSON_MEDIA_TYPE)
