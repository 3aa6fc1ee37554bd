"""What the client-facing areas (client delivery and OFREP) share: where the experiments come
from, the client API key, the per-client rate limit and the clock.

A shared module, so the areas never import each other (DESIGN.md; checked by import-linter).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from starlette.requests import Request

from splitlab.core.model import Experiment
from splitlab.errors import AuthError, ForbiddenError, RateLimitedError
from splitlab.service.rate_limit import RateLimiter

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
    """Checks the client API key (``Authorization: Bearer`` or ``X-API-Key``) when one is set,
    and the per-client rate limit when there is one.

    No credentials → :class:`AuthError` (401); wrong ones → :class:`ForbiddenError` (403), as
    OFREP's security schemes say; over the limit → :class:`RateLimitedError` (429).
    """

    api_key: str | None
    limiter: RateLimiter | None = None

    def credential(self, request: Request) -> str | None:
        """The credential the request presents, if any."""
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            return header[7:].strip()
        return request.headers.get("x-api-key")

    def check(self, request: Request) -> None:
        """Raise unless the request may pass (the rate limit applies only when it is set)."""
        presented = self.credential(request)
        if self.api_key is not None:
            if not presented:
                raise AuthError("an API key is required")
            if not hmac.compare_digest(presented.encode(), self.api_key.encode()):
                raise ForbiddenError("the API key is not valid")
        if self.limiter is None:
            return
        client = presented or (request.client.host if request.client else "")
        wait = self.limiter.acquire(client)
        if wait > 0:
            raise RateLimitedError("rate limit reached", max(1, int(wait + 0.999)))
