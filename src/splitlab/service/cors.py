"""CORS for ``POST /v1/events``: pages on other origins posting events with ``fetch``.

A beacon or ``fetch`` with a CORS-safelisted content type (``text/plain``, which the browser SDK
uses) is sent without asking; the answer only matters to a page that reads it. A ``fetch`` with
``application/json`` (or an ``X-Request-Id`` or ``Content-Encoding`` header) is *preflighted*:
the browser first sends ``OPTIONS`` and posts only when the answer allows the page's origin.
Allowed origins come from ``SPLITLAB_EVENTS_CORS_ORIGINS`` (``*``: any). Credentials are never
allowed (the intake reads no cookie), so ``*`` is safe to answer with. Answers to an allowed origin
expose ``X-Status-Message``, EventGate's summary (see :mod:`splitlab.service.intake`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

ALLOWED_HEADERS = frozenset({"content-encoding", "content-type", "x-request-id"})
EXPOSED_HEADERS = "X-Status-Message"
"""The intake's summary header (EventGate's reason phrase), readable by an allowed page."""
MAX_AGE_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Which page origins may read answers and send preflighted requests."""

    origins: Collection[str]

    def allow_origin(self, origin: str | None) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for a request from ``origin``, if allowed."""
        if not origin or not self.origins:
            return None
        if "*" in self.origins:
            return "*"
        return origin if origin in self.origins else None

    def headers(self, origin: str | None) -> dict[str, str]:
        """The CORS headers for an actual (non-preflight) answer to a request from ``origin``;
        empty when not allowed."""
        allowed = self.allow_origin(origin)
        if allowed is None:
            return {}
        return {"Access-Control-Allow-Origin": allowed, "Access-Control-Expose-Headers":
                EXPOSED_HEADERS, "Vary": "Origin"}

    def preflight(self, request: Request) -> Response:
        """The answer to ``OPTIONS``: 204 allowing ``POST`` and the requested headers, or 403
        naming what is not allowed (the browser then does not send the request)."""
        origin = request.headers.get("origin")
        allowed = self.allow_origin(origin)
        if allowed is None:
            return Response(f"origin {(origin or '')[:100]!r} may not post events", 403,
                            media_type="text/plain")
        method = request.headers.get("access-control-request-method", "")
        asked = request.headers.get("access-control-request-headers", "")
        names = {name.strip().lower() for name in asked.split(",") if name.strip()}
        if method != "POST" or not names <= ALLOWED_HEADERS:
            return Response("only POST with content-encoding, content-type and x-request-id "
                            "headers is allowed",
                            403, media_type="text/plain")
        return Response(status_code=204, headers={
            "Access-Control-Allow-Origin": allowed,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": ", ".join(sorted(ALLOWED_HEADERS)),
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
            "Vary": "Origin",
        })
