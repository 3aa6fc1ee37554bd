"""WSGI middleware (Flask, Django, any WSGI app).

Per request it reads (or issues) the anonymous-id cookie, puts the request's
:class:`~splitlab.sdk.manager.ExperimentManager` in ``environ["splitlab.manager"]``, and on the
way out decorates HTML pages (compressed ones too, see :mod:`splitlab.sdk.page`) or adds the
``X-Experiment-Enrollments`` header to other responses. A page with a ``Content-Length`` is
decorated whole and re-measured; a streamed one is decorated on the fly. The app's iterable is
closed exactly once, whatever happens (Django's ``request_finished`` depends on it), and a
response that is not HTML is handed to the server as the app made it (``wsgi.file_wrapper``
keeps its fast path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from splitlab.sdk.client import Client
from splitlab.sdk.encoding import brotli_module
from splitlab.sdk.manager import ExperimentManager
from splitlab.sdk.page import PageContext, PageResponse, PageRewriter, settle_other
from splitlab.sdk.web import (
    ENVIRON_KEY,
    KEYS_HEADERS,
    RequestFacts,
    WebOptions,
    checked_client,
    is_html,
    keys_document,
    open_request,
    page_status,
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
        self._context = PageContext(self.options, self.client.metrics, brotli_module())

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
            user_agent=environ.get("HTTP_USER_AGENT"),
            mobile_hint=environ.get("HTTP_SEC_CH_UA_MOBILE"),
            host=environ.get("HTTP_HOST"),
            logged_in=True if environ.get("REMOTE_USER") else None,
            request=environ,
        )
        manager, set_cookie = open_request(self.client, self.options, facts)
        environ[ENVIRON_KEY] = manager
        manager.hold_exposures()
        captured = _Captured([] if set_cookie is None else [("Set-Cookie", set_cookie)])
        try:
            result = self.app(environ, captured.start_response)
        except BaseException:
            manager.release_exposures(False, "request_failed")
            raise
        closer = _Closer(result)
        try:
            return self._respond(environ, start_response, captured, closer)
        except BaseException:
            closer.close()
            manager.release_exposures(False, "request_failed")
            raise

    def _respond(self, environ: dict[str, Any], start_response: StartResponse,
                 captured: _Captured, closer: _Closer) -> Iterable[bytes]:
        manager: ExperimentManager = environ[ENVIRON_KEY]
        head = environ.get("REQUEST_METHOD") == "HEAD"
        chunks: Iterator[bytes] | None = None
        early: list[bytes] = []
        if captured.status is None:  # a generator app calls start_response lazily
            chunks = iter(closer.result)
            while captured.status is None:
                try:
                    early.append(next(chunks))
                except StopIteration:
                    raise RuntimeError("the wrapped WSGI app never called start_response") from None
        assert captured.status is not None
        headers = captured.headers
        content_type = _header(headers, "content-type")
        if not is_html(content_type) or not page_status(int(captured.status[:3])):
            if not is_html(content_type):
                header = manager.enrollments_header()
                if header:
                    headers.append(("X-Experiment-Enrollments", header))
            settle_other(manager, head)
            start_response(captured.status, headers, captured.exc_info)
            if chunks is None and not captured.written:
                return closer.result  # untouched: the server's fast paths still apply
            return _Passthrough([*captured.written, *early], chunks or iter(closer.result), closer)
        response = PageResponse(content_type or "", _header(headers, "content-encoding"), head)
        rewriter = PageRewriter(manager, self._context, response)
        first = [*captured.written, *early]
        rest = chunks if chunks is not None else iter(closer.result)
        if _header(headers, "content-length") is not None:  # decorated whole, then re-measured
            body = b"".join([*first, *rest])
            closer.close()
            out = rewriter.feed(body) + rewriter.finish()
            if rewriter.outcome == "decorated":
                headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
                headers.append(("Content-Length", str(len(out))))
            start_response(captured.status, headers, captured.exc_info)
            return [out]
        captured.headers = headers
        return _Streamed(first, rest, closer, _Page(rewriter, captured, start_response))


def _header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class _Closer:
    """Closes the app's iterable once, however often it is asked to."""

    def __init__(self, result: Iterable[bytes]) -> None:
        self.result = result
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self.result, "close", None)
        if callable(close):
            close()


class _Captured:
    """The inner app's ``start_response``: records the status and headers, buffers ``write``."""

    def __init__(self, extra: Headers) -> None:
        self.status: str | None = None
        self.headers: Headers = []
        self.exc_info: ExcInfo | None = None
        self.written: list[bytes] = []
        self._extra = extra

    def start_response(
        self, status: str, headers: Headers, exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        self.status, self.headers, self.exc_info = status, [*headers, *self._extra], exc_info
        return self.written.append


class _Passthrough:
    """The response body as the app produced it, closing the app's iterable when done."""

    def __init__(self, first: list[bytes], rest: Iterator[bytes], closer: _Closer) -> None:
        self._first, self._rest, self._closer = first, rest, closer

    def __iter__(self) -> Iterator[bytes]:
        yield from self._first
        yield from self._rest

    def close(self) -> None:
        self._closer.close()


class _Page:
    """A streamed page's rewriter and the ``start_response`` it calls once it has output."""

    def __init__(self, rewriter: PageRewriter, captured: _Captured,
                 start_response: StartResponse) -> None:
        self.rewriter, self._captured, self._start_response = rewriter, captured, start_response
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            captured = self._captured
            headers = [(n, v) for n, v in captured.headers if n.lower() != "content-length"]
            self._start_response(captured.status, headers, captured.exc_info)


class _Streamed:
    """A streamed page, decorated as it passes; ``close`` closes the app's iterable."""

    def __init__(self, first: list[bytes], rest: Iterator[bytes], closer: _Closer,
                 page: _Page) -> None:
        self._first, self._rest, self._closer, self._page = first, rest, closer, page

    def __iter__(self) -> Iterator[bytes]:
        rewriter = self._page.rewriter
        try:
            for chunk in _chain(self._first, self._rest):
                out = rewriter.feed(chunk)
                if out:
                    self._page.start()
                    yield out
            out = rewriter.finish()
        except BaseException:
            rewriter.abandon()
            raise
        self._page.start()
        if out:
            yield out

    def close(self) -> None:
        self._closer.close()


def _chain(first: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from first
    yield from rest
