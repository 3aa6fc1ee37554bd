"""Client delivery: the signing key, its well-known URL, and signed payloads on request.

Routes:

- ``GET /.well-known/splitlab-keys.json`` — the JWK set of the payload signing key (public).
- ``POST /client/v1/payload`` — ``{"identifiers": {"edge-unique": "..."}, "site": "enwiki"}``
  → the signed envelope of that unit's client payload (:mod:`splitlab.sdk.signing`). For
  application servers that do not hold the private key; guarded by the client API key.

The experiments come from an :class:`ExperimentSource` (the registry, once wired in; a static
list in tests). The key pair is generated in the data directory on first start.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from splitlab.core.model import Experiment
from splitlab.sdk.bootstrap import KEYS_PATH
from splitlab.sdk.client import utc_now
from splitlab.sdk.client_payload import PayloadOptions, build_payload
from splitlab.sdk.signing import PayloadSigner, load_or_create_signer
from splitlab.service.api_support import json_response, read_body

Clock = Callable[[], datetime]


class ExperimentSource(Protocol):
    """A source of the current experiments (the registry in the service)."""

    def experiments(self) -> Sequence[Experiment]:
        """Every experiment currently configured (active or not)."""
        ...


@dataclass(frozen=True, slots=True)
class StaticExperiments:
    """A fixed list of experiments (tests, and a JSON file until the registry is wired)."""

    items: tuple[Experiment, ...] = ()

    def experiments(self) -> Sequence[Experiment]:
        """The fixed list."""
        return self.items

@dataclass(frozen=True, slots=True)
class ApiKeyGate:
    """Checks the client API key (``Authorization: Bearer`` or ``X-API-Key``) when one is set.

    No credentials → 401; wrong credentials → 403 (OFREP's security schemes).
    """

    api_key: str | None

    def credential(self, request: Request) -> str | None:
        """The credential the request presents, if any."""
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            return header[7:].strip()
        return request.headers.get("x-api-key")

    def refuse(self, request: Request) -> Response | None:
        """The error response when the request may not pass, else ``None``."""
        if self.api_key is None:
            return None
        presented = self.credential(request)
        if not presented:
            return json_response({"errorDetails": "an API key is required"}, 401,
                                 {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(presented.encode(), self.api_key.encode()):
            return json_response({"errorDetails": "the API key is not valid"}, 403)
        return None


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body (at most ``MAX_BODY_BYTES``) as a JSON object; ``ValueError`` with a
    one-line reason otherwise."""
    body = await read_body(request)
    try:
        value = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"the body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


def _identifiers(body: dict[str, Any]) -> dict[str, int | str]:
    identifiers = body.get("identifiers")
    if not isinstance(identifiers, dict) or not identifiers:
        raise ValueError("'identifiers' must be an object of sampling unit → identifier")
    for unit, value in identifiers.items():
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"identifiers[{unit!r}] must be a string or an integer")
    return identifiers


@dataclass(slots=True)
class ClientDeliveryComponent:
    """The signing key, its JWK set, and the payload endpoint."""

    source: ExperimentSource
    data_dir: Path
    options: PayloadOptions = field(default_factory=PayloadOptions)
    gate: ApiKeyGate = field(default_factory=lambda: ApiKeyGate(None))
    clock: Clock = utc_now
    signer: PayloadSigner | None = field(default=None)

    def routes(self) -> Sequence[BaseRoute]:
        """The keys document and the payload endpoint."""
        return [Route(KEYS_PATH, self.keys, methods=["GET"]),
                Route("/client/v1/payload", self.payload, methods=["POST"])]

    async def start(self) -> None:
        """Load the signing key, generating it on first start."""
        if self.signer is None:
            self.signer = load_or_create_signer(self.data_dir)

    async def stop(self) -> None:
        """Nothing to release."""

    def _signer(self) -> PayloadSigner:
        if self.signer is None:
            raise RuntimeError("the client delivery component has not been started")
        return self.signer

    async def keys(self, request: Request) -> Response:
        """The JWK set; cacheable for an hour."""
        return json_response(self._signer().jwks(), 200,
                             {"Cache-Control": "public, max-age=3600"})

    async def payload(self, request: Request) -> Response:
        """The signed payload of the unit named in the body."""
        refused = self.gate.refuse(request)
        if refused is not None:
            return refused
        try:
            body = await read_json_object(request)
            identifiers = _identifiers(body)
            site = body.get("site")
            if site is not None and not isinstance(site, str):
                raise ValueError("'site' must be a string")
        except ValueError as error:
            return json_response({"error": "bad_request", "detail": str(error)}, 400)
        options = self.options if site is None else dataclasses.replace(self.options, site=site)
        payload = build_payload(self.source.experiments(), identifiers, self.clock(), options)
        return json_response(self._signer().sign(payload), 200,
                             {"Cache-Control": "private, no-store"})
