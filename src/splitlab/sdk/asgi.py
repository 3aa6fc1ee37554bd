"""ASGI middleware (Starlette, FastAPI, any ASGI app), written against raw ASGI.

Per HTTP request it reads (or issues) the anonymous-id cookie, builds the request's
:class:`~splitlab.sdk.manager.ExperimentManager` (``scope["state"]["splitlab"]``, that is
``request.state.splitlab`` in Starlette), and on the way out decorates HTML pages or adds the
``X-Experiment-Enrollments`` header to other responses. Events queued during the request are
delivered by the client's sender after the response, off the event loop.

Compressed pages are decoded, decorated and re-encoded (:mod:`splitlab.sdk.page`), so the
middleware works outside or inside a compression middleware (inside is cheaper: it then
decorates before compression). A response with a ``Content-Length`` is decorated whole and
re-measured; a streamed one is decorated on the fly, after which it streams on unbuffered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from splitlab.sdk.client import Client
from splitlab.sdk.encoding import brotli_module
from splitlab.sdk.manager import ExperimentManager
from splitlab.sdk.page import PageContext, PageResponse, PageRewriter, settle_other
from splitlab.sdk.web import (
    KEYS_HEADERS,
    STATE_KEY,
    RequestFacts,
    WebOptions,
    checked_client,
    is_html,
    keys_document,
    open_request,
    page_status,
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
        self._context = PageContext(self.options, self.client.metrics, brotli_module())

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
            user_agent=headers.get("user-agent"),
            mobile_hint=headers.get("sec-ch-ua-mobile"),
            host=headers.get("host"),
            logged_in=_logged_in(scope),
            request=scope,
        )
        manager, set_cookie = open_request(self.client, self.options, facts)
        scope.setdefault("state", {})[STATE_KEY] = manager
        manager.hold_exposures()
        responder = _Responder(send, manager, self._context, set_cookie,
                               scope.get("method") == "HEAD")
        try:
            await self.app(scope, receive, responder.send)
        finally:  # no response, or it failed half-way: nothing was seen
            manager.release_exposures(False, "request_failed")


def _logged_in(scope: Scope) -> bool | None:
    """``scope["user"].is_authenticated`` (Starlette's ``AuthenticationMiddleware``, when it
    runs before this one), else ``None``."""
    known = getattr(scope.get("user"), "is_authenticated", None)
    return known if isinstance(known, bool) else None


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (repeated ones joined as HTTP allows)."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        separator = "; " if name == "cookie" else ", "
        found[name] = found[name] + separator + value if name in found else value
    return found


class _Responder:
    """Intercepts the response: decorates HTML pages, adds headers to the rest."""

    def __init__(self, send: Send, manager: ExperimentManager, context: PageContext,
                 set_cookie: str | None, head: bool) -> None:
        self._send = send
        self._manager = manager
        self._context = context
        self._set_cookie = set_cookie
        self._head = head
        self._start: Message | None = None
        self._rewriter: PageRewriter | None = None
        self._whole: list[bytes] | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            await self._on_start(message)
        elif message["type"] == "http.response.body" and self._rewriter is not None:
            await self._on_body(message)
        else:
            if self._rewriter is not None:  # e.g. http.response.pathsend: a page not seen here
                self._rewriter.give_up("file")
                self._rewriter = None
            await self._flush_start()
            await self._send(message)

    async def _on_start(self, message: Message) -> None:
        headers = list(message.get("headers", ()))
        if self._set_cookie is not None:
            headers.append((b"set-cookie", self._set_cookie.encode("latin-1")))
        names = {name.lower(): value.decode("latin-1") for name, value in headers}
        content_type = names.get(b"content-type")
        if is_html(content_type) and page_status(message["status"]):
            response = PageResponse(content_type or "", names.get(b"content-encoding"),
                                    self._head)
            self._rewriter = PageRewriter(self._manager, self._context, response)
            self._whole = [] if b"content-length" in names else None
            if self._whole is None:
                headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
            self._start = {**message, "headers": headers}
            return
        if not is_html(content_type):
            enrollments = self._manager.enrollments_header()
            if enrollments:
                headers.append((b"x-experiment-enrollments", enrollments.encode("ascii")))
        settle_other(self._manager, self._head)
        await self._send({**message, "headers": headers})

    async def _on_body(self, message: Message) -> None:
        rewriter = self._rewriter
        assert rewriter is not None
        body, more = message.get("body", b""), message.get("more_body", False)
        if self._whole is not None:  # decorated whole, then re-measured
            self._whole.append(body)
            if more:
                return
            out = rewriter.feed(b"".join(self._whole)) + rewriter.finish()
            if rewriter.outcome == "decorated":
                self._set_length(len(out))
        else:
            out = rewriter.feed(body) + (b"" if more else rewriter.finish())
            if more and not out:
                return
        await self._flush_start()
        await self._send({"type": "http.response.body", "body": out, "more_body": more})

    def _set_length(self, length: int) -> None:
        start = self._start
        assert start is not None
        headers = [(n, v) for n, v in start["headers"] if n.lower() != b"content-length"]
        start["headers"] = [*headers, (b"content-length", str(length).encode("ascii"))]

    async def _flush_start(self) -> None:
        if self._start is not None:
            start, self._start = self._start, None
            await self._send(start)
