"""Django: ``splitlab.sdk.django.SplitlabMiddleware`` for ``MIDDLEWARE``.

Settings: ``SPLITLAB_CLIENT``, the process's :class:`~splitlab.sdk.Client` or the dotted path
of one (required); ``SPLITLAB_WEB_OPTIONS``, a :class:`~splitlab.sdk.web.WebOptions` or the
dotted path of one (optional). Views get the request's manager as ``request.splitlab``.

The middleware is sync and async capable (it follows the stack it is in), takes HTTPS from
``request.is_secure()`` (so ``SECURE_PROXY_SSL_HEADER`` is honoured for the ``Secure`` cookie),
and decorates HTML responses whole or streamed, compressed or not, so its place relative to
``GZipMiddleware`` does not matter (after it in ``MIDDLEWARE``, that is inside it, saves the
decode and re-encode). It runs under ``django.test.Client`` like any middleware.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.module_loading import import_string

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

GetResponse = Callable[[HttpRequest], Any]


class SplitlabMiddleware:
    """Gives every request an experiment manager (``request.splitlab``) and decorates pages."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.client = checked_client(_setting("SPLITLAB_CLIENT", required=True))
        options = _setting("SPLITLAB_WEB_OPTIONS", required=False) or WebOptions()
        if not isinstance(options, WebOptions):
            raise ImproperlyConfigured("SPLITLAB_WEB_OPTIONS must be a splitlab WebOptions")
        self.options = options
        self._context = PageContext(options, self.client.metrics, brotli_module())
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self._acall(request)
        keys = self._keys(request)
        if keys is not None:
            return keys
        manager, set_cookie = self._open(request)
        try:
            response = self.get_response(request)
        except BaseException:
            manager.release_exposures(False, "request_failed")
            raise
        return self._respond(request, response, manager, set_cookie)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        keys = self._keys(request)
        if keys is not None:
            return keys
        manager, set_cookie = self._open(request)
        try:
            response = await self.get_response(request)
        except BaseException:
            manager.release_exposures(False, "request_failed")
            raise
        return self._respond(request, response, manager, set_cookie)

    def _keys(self, request: HttpRequest) -> HttpResponse | None:
        keys = keys_document(self.options, request.method or "", request.path_info)
        if keys is None:
            return None
        return HttpResponse(keys, headers=dict(KEYS_HEADERS))

    def _open(self, request: HttpRequest) -> tuple[ExperimentManager, str | None]:
        meta = request.META
        logged_in, joined = _user_facts(request)
        facts = RequestFacts(
            cookie=meta.get("HTTP_COOKIE"),
            query_string=meta.get("QUERY_STRING", ""),
            enrollments=meta.get("HTTP_X_EXPERIMENT_ENROLLMENTS"),
            secure=request.is_secure(),
            user_agent=meta.get("HTTP_USER_AGENT"),
            mobile_hint=meta.get("HTTP_SEC_CH_UA_MOBILE"),
            host=meta.get("HTTP_HOST"),
            logged_in=logged_in,
            registration_date=joined,
            request=request,
        )
        manager, set_cookie = open_request(self.client, self.options, facts)
        request.splitlab = manager
        meta[ENVIRON_KEY] = manager
        manager.hold_exposures()
        return manager, set_cookie

    def _respond(self, request: HttpRequest, response: HttpResponseBase,
                 manager: ExperimentManager, set_cookie: str | None) -> HttpResponseBase:
        if set_cookie is not None:
            response.cookies.load(set_cookie)
        head = request.method == "HEAD"
        content_type = response.get("Content-Type")
        if not is_html(content_type) or not page_status(response.status_code):
            if not is_html(content_type):
                header = manager.enrollments_header()
                if header:
                    response["X-Experiment-Enrollments"] = header
            settle_other(manager, head)
            return response
        page = PageResponse(content_type or "", response.get("Content-Encoding"), head)
        rewriter = PageRewriter(manager, self._context, page)
        if response.streaming:
            _stream(response, rewriter)
            return response
        assert isinstance(response, HttpResponse)
        out = rewriter.feed(response.content) + rewriter.finish()
        if rewriter.outcome == "decorated":
            response.content = out
            if response.has_header("Content-Length"):
                response["Content-Length"] = str(len(out))
        return response


def _user_facts(request: HttpRequest) -> tuple[bool | None, datetime | None]:
    """Whether ``request.user`` (set by ``AuthenticationMiddleware`` when it comes before this
    one) is authenticated, and its ``date_joined`` when it is; ``(None, None)`` without it."""
    user = getattr(request, "user", None)
    known = getattr(user, "is_authenticated", None)
    if not isinstance(known, bool):
        return None, None
    joined = getattr(user, "date_joined", None) if known else None
    return known, joined if isinstance(joined, datetime) else None


def _setting(name: str, required: bool) -> Any:
    value = getattr(settings, name, None)
    if value is None and required:
        raise ImproperlyConfigured(
            f"{name} is not set: give it the splitlab Client (or its dotted path, such as "
            f"'myproject.experiments.client') that SplitlabMiddleware should use")
    return import_string(value) if isinstance(value, str) else value


def _stream(response: Any, rewriter: PageRewriter) -> None:
    """Decorate a streamed response on the fly (it has no length to keep)."""
    if response.has_header("Content-Length"):
        del response["Content-Length"]
    if getattr(response, "file_to_stream", None) is not None:
        response.file_to_stream = None  # the server must send the decorated stream, not the file
    content = response.streaming_content
    if response.is_async:
        response.streaming_content = _decorated_async(rewriter, content)
    else:
        response.streaming_content = _decorated(rewriter, content)


def _decorated(rewriter: PageRewriter, content: Iterable[bytes]) -> Iterator[bytes]:
    try:
        for chunk in content:
            out = rewriter.feed(chunk)
            if out:
                yield out
        out = rewriter.finish()
    except BaseException:
        rewriter.abandon()
        raise
    if out:
        yield out


async def _decorated_async(rewriter: PageRewriter,
                           content: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in content:
            out = rewriter.feed(chunk)
            if out:
                yield out
        out = rewriter.finish()
    except BaseException:
        rewriter.abandon()
        raise
    if out:
        yield out


__all__ = ["SplitlabMiddleware"]
