"""ASGI middleware (Starlette, FastAPI, any ASGI app), written against raw ASGI.

Per HTTP request it reads (or issues) the anonymous-id cookie, builds the request's
:class:`~splitlab.sdk.manager.ExperimentManager` (``scope["state"]["splitlab"]``, that is
``request.state.splitlab`` in Starlette), and on the way out decorates HTML pages or adds the
``X-Experiment-Enrollments`` header to other responses. Events queued during the request are
delivered by the client's sender after the response, off the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from splitlab.sdk.client import Client
from splitlab.sdk.manager import ExperimentManager
from splitlab.sdk.web import (
    KEYS_HEADERS,
    STATE_KEY,
    RequestFacts,
    WebOptions,
    checked_client,
    decorate_html,
    is_html,
    keys_document,
    open_request,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SplitlabASGIMiddleware:
    """Wrap ``app`` so every HTTP request has an experiment manager from ``client``."""

    def __init__(self, app: ASGIApp, client: Client, options: WebOptions | None = None) -> None:
        self.app = app
        self.client = checked_client(client)
        self.options = options or WebOptions()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        keys = keys_document(self.options, scope.get("method", ""), scope.get("path", ""))
        if keys is not None:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (n.lower().encode("ascii"), v.encode("ascii")) for n, v in KEYS_HEADERS]})
            await send({"type": "http.response.body", "body": keys})
            return
        headers = _headers(scope)
        facts = RequestFacts(
            cookie=headers.get("cookie"),
            query_string=scope.get("query_string", b"").decode("latin-1"),
            enrollments=headers.get("x-experiment-enrollments"),
            secure=scope.get("scheme") == "https",
        )
        manager, set_cookie = open_request(self.client, self.options, facts)
        scope.setdefault("state", {})[STATE_KEY] = manager
        responder = _Responder(send, manager, self.options, set_cookie)
        await self.app(scope, receive, responder.send)


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (repeated ones joined as HTTP allows)."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        separator = "; " if name == "cookie" else ", "
        found[name] = found[name] + separator + value if name in found else value
    return found


class _Responder:
    """Intercepts the response: buffers HTML to decorate it, adds headers to the rest."""

    def __init__(self, send: Send, manager: ExperimentManager, options: WebOptions,
                 set_cookie: str | None) -> None:
        self._send = send
        self._manager = manager
        self._options = options
        self._set_cookie = set_cookie
        self._start: Message | None = None
        self._chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            await self._on_start(message)
        elif message["type"] == "http.response.body" and self._start is not None:
            self._chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._flush_html()
        else:
            if self._start is not None:  # e.g. http.response.pathsend: send the page as it is
                start, self._start = self._start, None
                await self._send(start)
            await self._send(message)

    async def _on_start(self, message: Message) -> None:
        headers = list(message.get("headers", ()))
        if self._set_cookie is not None:
            headers.append((b"set-cookie", self._set_cookie.encode("latin-1")))
        names = {name.lower(): value for name, value in headers}
        content_type = names.get(b"content-type", b"").decode("latin-1")
        if is_html(content_type) and b"content-encoding" not in names:
            self._start = {**message, "headers": headers}
            return
        if not is_html(content_type):
            enrollments = self._manager.enrollments_header()
            if enrollments:
                headers.append((b"x-experiment-enrollments", enrollments.encode("ascii")))
        await self._send({**message, "headers": headers})

    async def _flush_html(self) -> None:
        start = self._start
        assert start is not None
        body = b"".join(self._chunks)
        headers = start["headers"]
        content_type = dict(headers).get(b"content-type", b"").decode("latin-1")
        decorated = decorate_html(body, content_type, self._manager, self._options)
        if decorated is not None:
            body = decorated
            headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode("ascii")))
        await self._send({**start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})
