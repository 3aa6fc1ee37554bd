"""Client delivery: the signing key, its well-known URL, and signed payloads on request.

Routes:

- ``GET /.well-known/splitlab-keys.json`` — the JWK set of the payload signing key (public).
- ``POST /client/v1/payload`` — ``{"identifiers": {"edge-unique": "..."}, "site": "enwiki",
  "attributes": {"platform": "mobile"}}`` → the signed envelope of that unit's client payload
  (:mod:`splitlab.sdk.signing`). For application servers that do not hold the private key;
  guarded by the client API key. ``attributes`` (optional; ``site`` among them when given) are
  what the server knows for targeting conditions: a condition reading any other attribute
  travels to the browser (:mod:`splitlab.sdk.client_payload`).

The experiments come from an :class:`ExperimentSource` (the registry in the service; a static
list in tests). The key pair is generated in the data directory on first start. Errors are raised
from the tree (:mod:`splitlab.service.problems` answers them).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from splitlab.errors import BadRequestError
from splitlab.sdk.bootstrap import KEYS_PATH
from splitlab.sdk.client import utc_now
from splitlab.sdk.client_payload import PayloadOptions, build_payload
from splitlab.sdk.signing import (
    KEY_FILE,
    NEXT_KEY_FILE,
    PREVIOUS_KEY_FILE,
    PayloadSigner,
    load_or_create_signer,
)
from splitlab.service.api_support import json_response, read_json_object
from splitlab.service.client_access import ApiKeyGate, Clock, ExperimentSource


def _identifiers(body: dict[str, Any]) -> dict[str, int | str]:
    identifiers = body.get("identifiers")
    if not isinstance(identifiers, dict) or not identifiers:
        raise BadRequestError("'identifiers' must be an object of sampling unit → identifier")
    for unit, value in identifiers.items():
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise BadRequestError(f"identifiers[{unit!r}] must be a string or an integer")
    return identifiers


def _attributes(body: dict[str, Any], site: str | None) -> dict[str, Any]:
    given = body.get("attributes", {})
    if not isinstance(given, dict):
        raise BadRequestError("'attributes' must be an object of attribute name → value")
    return {**({} if site is None else {"site": site}), **given}


FileState = tuple[tuple[int, int] | None, ...]


def key_files_state(data_dir: Path) -> FileState:
    """Identity and change time of each signing key file (``None``: absent)."""
    state: list[tuple[int, int] | None] = []
    for name in (KEY_FILE, NEXT_KEY_FILE, PREVIOUS_KEY_FILE):
        try:
            found = os.stat(data_dir / name)
        except FileNotFoundError:
            state.append(None)
        else:
            state.append((found.st_ino, found.st_mtime_ns))
    return tuple(state)


@dataclass(slots=True)
class ClientDeliveryComponent:
    """The signing keys, their JWK set, and the payload endpoint.

    Keys loaded from the data directory are loaded again when their files change
    (``splitlab keys rotate``), so every worker process follows a rotation at its next request;
    a ``signer`` given by the caller is used as it is.
    """

    source: ExperimentSource
    data_dir: Path
    options: PayloadOptions = field(default_factory=PayloadOptions)
    gate: ApiKeyGate = field(default_factory=lambda: ApiKeyGate(None))
    clock: Clock = utc_now
    signer: PayloadSigner | None = field(default=None)
    _files: FileState | None = field(default=None, init=False)

    def routes(self) -> Sequence[BaseRoute]:
        """The keys document and the payload endpoint."""
        return [Route(KEYS_PATH, self.keys, methods=["GET"]),
                Route("/client/v1/payload", self.payload, methods=["POST"])]

    async def start(self) -> None:
        """Load the signing keys, generating them on first start."""
        if self.signer is None:
            self.signer = load_or_create_signer(self.data_dir)
            self._files = key_files_state(self.data_dir)

    async def stop(self) -> None:
        """Nothing to release."""

    def _signer(self) -> PayloadSigner:
        if self.signer is None:
            raise RuntimeError("the client delivery component has not been started")
        if self._files is not None:
            files = key_files_state(self.data_dir)
            if files != self._files:
                self.signer, self._files = load_or_create_signer(self.data_dir), files
        return self.signer

    async def keys(self, request: Request) -> Response:
        """The JWK set; cacheable for an hour."""
        return json_response(self._signer().jwks(), 200,
                             {"Cache-Control": "public, max-age=3600"})

    async def payload(self, request: Request) -> Response:
        """The signed payload of the unit named in the body."""
        self.gate.check(request)
        body = await read_json_object(request)
        identifiers = _identifiers(body)
        site = body.get("site")
        if site is not None and not isinstance(site, str):
            raise BadRequestError("'site' must be a string")
        attributes = _attributes(body, site)
        options = self.options if site is None else dataclasses.replace(self.options, site=site)
        payload = build_payload(self.source.experiments(), identifiers, self.clock(), options,
                                attributes)
        return json_response(self._signer().sign(payload), 200,
                             {"Cache-Control": "private, no-store"})
