"""WSGI middleware (Flask, Django, any WSGI app).

Per request it reads (or issues) the anonymous-id cookie, puts the request's
:class:`~splitlab.sdk.manager.ExperimentManager` in ``environ["splitlab.manager"]``, and on the
way out decorates HTML pages or adds the ``X-Experiment-Enrollments`` header to other responses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from splitlab.sdk.client import Client
from splitlab.sdk.web import (
    ENVIRON_KEY,
    KEYS_HEADERS,
    RequestFacts,
    WebOptions,
    checked_client,
    decorate_html,
    is_html,
    keys_document,
    open_request,
)

Headers = list[tuple[str, str]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SplitlabWSGIMiddleware:
    """Wrap ``app`` so every request has an experiment manager from ``client``."""

    def __init__(self, app: WSGIApp, client: Client, options: WebOptions | None = None) -> None:
        self.app = app
        self.client = checked_client(client)
        self.options = options or WebOptions()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        keys = keys_document(self.options, environ.get("REQUEST_METHOD", ""),
                             environ.get("PATH_INFO", ""))
        if keys is not None:
            start_response("200 OK", [*KEYS_HEADERS, ("Content-Length", str(len(keys)))])
            return [keys]
        facts = RequestFacts(
            cookie=environ.get("HTTP_COOKIE"),
            query_string=environ.get("QUERY_STRING", ""),
            enrollments=environ.get("HTTP_X_EXPERIMENT_ENROLLMENTS"),
            secure=environ.get("wsgi.url_scheme") == "https",
        )
        manager, set_cookie = open_request(self.client, self.options, facts)
        environ[ENVIRON_KEY] = manager
        extra: Headers = [] if set_cookie is None else [("Set-Cookie", set_cookie)]
        captured = _Captured()
        result = self.app(environ, captured.start_response)
        chunks = iter(result)
        early: list[bytes] = []
        while captured.status is None:  # a generator app calls start_response lazily
            try:
                early.append(next(chunks))
            except StopIteration:
                break
        if captured.status is None:
            _close(result)
            raise RuntimeError("the wrapped WSGI app never called start_response")
        headers = captured.headers + extra
        content_type = _header(headers, "content-type")
        if is_html(content_type) and _header(headers, "content-encoding") is None:
            body = b"".join([*captured.written, *early, *chunks])
            _close(result)
            decorated = decorate_html(body, content_type or "", manager, self.options)
            if decorated is not None:
                body = decorated
                headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
                headers.append(("Content-Length", str(len(body))))
            start_response(captured.status, headers, captured.exc_info)
            return [body]
        if not is_html(content_type):
            header = manager.enrollments_header()
            if header:
                headers.append(("X-Experiment-Enrollments", header))
        start_response(captured.status, headers, captured.exc_info)
        return _Passthrough([*captured.written, *early], chunks, result)


def _header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if callable(close):
        close()


class _Captured:
    """The inner app's ``start_response``: records the status and headers, buffers ``write``."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: Headers = []
        self.exc_info: ExcInfo | None = None
        self.written: list[bytes] = []

    def start_response(
        self, status: str, headers: Headers, exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        self.status, self.headers, self.exc_info = status, list(headers), exc_info
        return self.written.append


class _Passthrough:
    """The response body as the app produced it, closing the app's iterable when done."""

    def __init__(self, first: list[bytes], rest: Iterator[bytes],
                 result: Iterable[bytes]) -> None:
        self._first, self._rest, self._result = first, rest, result

    def __iter__(self) -> Iterator[bytes]:
        yield from self._first
        yield from self._rest

    def close(self) -> None:
        _close(self._result)
