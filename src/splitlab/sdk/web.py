"""What the ASGI and WSGI middlewares share: the anonymous-id cookie and page decoration.

A page gets its enrollments as a JSON data block,
``<script type="application/json" id="splitlab-config">{...}</script>``, which a strict
Content-Security-Policy allows (it is data, not script), and body classes
``<prefix>-experiment-<name>`` and ``<prefix>-experiment-<name>-<group>``, so that CSS can show
the right variant on the first paint.

With ``WebOptions(bootstrap=ClientBootstrap(...))`` the data block is instead the request's
*signed client payload* (:mod:`splitlab.sdk.bootstrap`), which the browser SDK verifies, and the
body classes also cover the experiments in that payload.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from splitlab.core.decoration import json_for_script, splice_page
from splitlab.core.html_scan import BodyScanner
from splitlab.sdk.attributes import RequestAttributes, attribute_map, platform_of, skin_of
from splitlab.sdk.bootstrap import ClientBootstrap, render_bootstrap
from splitlab.sdk.client import Client
from splitlab.sdk.client_payload import decided_entries
from splitlab.sdk.manager import ExperimentManager

log = logging.getLogger(__name__)
STATE_KEY = "splitlab"
"""The manager's name in ASGI ``scope["state"]`` (``request.state.splitlab`` in Starlette)."""
ENVIRON_KEY = "splitlab.manager"
"""The manager's key in the WSGI environ (``request.environ["splitlab.manager"]`` in Flask)."""
CONFIG_ELEMENT_ID = "splitlab-config"

_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.IGNORECASE)
_NOT_ASCII_COMPATIBLE = ("iso2022", "hz", "utf-7")  # stateful: ASCII bytes may not be ASCII


@dataclass(frozen=True, slots=True)
class WebOptions:
    """Middleware settings: the anonymous-id cookie's name and lifetime, the body class prefix,
    the signed bootstrap (``None``: pages carry the unsigned enrollments block), and
    ``attributes``, called with the framework's request (the ASGI scope, the WSGI environ,
    Django's ``HttpRequest``) for the targeting attributes the application knows
    (``edit_count``, its own ones); they go over the ones read from the request. When it
    raises, the error is logged and the request goes on with the attributes read."""

    cookie_name: str = "splitlab_anon"
    cookie_max_age: int = 365 * 24 * 3600
    class_prefix: str = "xlab"
    bootstrap: ClientBootstrap | None = None
    attributes: Callable[[Any], RequestAttributes | Mapping[str, Any] | None] | None = None


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a middleware reads from a request: the ``Cookie`` header, the query string, the
    ``X-Experiment-Enrollments`` header, whether it came over HTTPS; for targeting the
    ``User-Agent``, ``Sec-CH-UA-Mobile`` and ``Host`` headers, whether the framework knows the
    user as logged in (``None``: it does not say) and its registration date (aware); and the
    framework's ``request`` for :attr:`WebOptions.attributes`."""

    cookie: str | None
    query_string: str
    enrollments: str | None
    secure: bool
    user_agent: str | None = None
    mobile_hint: str | None = None
    host: str | None = None
    logged_in: bool | None = None
    registration_date: datetime | None = None
    request: object = None


def checked_client(client: object) -> Client:
    """``client``, when it is a :class:`~splitlab.sdk.Client` (``TypeError`` otherwise)."""
    if not isinstance(client, Client):
        raise TypeError(f"client must be a splitlab Client, not {type(client).__name__}")
    return client


def open_request(
    client: Client, options: WebOptions, facts: RequestFacts
) -> tuple[ExperimentManager, str | None]:
    """The request's manager, and the ``Set-Cookie`` value when a new anonymous id was issued
    (absent or malformed cookie)."""
    anonymous = anonymous_id_from(facts.cookie, options.cookie_name)
    issued = None if anonymous else new_anonymous_id()
    manager = client.manager(
        anonymous_id=anonymous or issued,
        query_string=facts.query_string,
        headers={"x-experiment-enrollments": facts.enrollments} if facts.enrollments else None,
        attributes=request_attributes(options, facts),
    )
    set_cookie = None if issued is None else cookie_header(options, issued, facts.secure)
    return manager, set_cookie


def request_attributes(options: WebOptions, facts: RequestFacts) -> dict[str, Any]:
    """The targeting attributes of a request: ``platform``, ``skin``, ``is_logged_in`` and
    ``registration_date`` as far as the request tells them, then the application's
    (:attr:`WebOptions.attributes`) over them."""
    known = facts.registration_date
    found = RequestAttributes(
        skin=skin_of(facts.query_string),
        platform=platform_of(facts.user_agent, facts.mobile_hint, facts.host),
        is_logged_in=facts.logged_in,
        registration_date=known if known is not None and known.tzinfo is not None else None,
    ).as_dict()
    if options.attributes is not None:
        try:
            found.update(attribute_map(options.attributes(facts.request)))
        except Exception:  # the application's hook must not break the page
            log.exception("WebOptions.attributes failed; the request's own attributes are used")
    return found


def anonymous_id_from(cookie_header: str | None, name: str) -> str | None:
    """The anonymous id in a ``Cookie`` header, if present and well-formed."""
    if not cookie_header:
        return None
    for part in cookie_header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name and _ID_PATTERN.fullmatch(value):
            return value
    return None


def new_anonymous_id() -> str:
    """A fresh random anonymous id (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def cookie_header(options: WebOptions, value: str, secure: bool) -> str:
    """The ``Set-Cookie`` value issuing the anonymous id: first-party, HttpOnly, SameSite=Lax,
    Secure when the request came over HTTPS."""
    parts = [f"{options.cookie_name}={value}", "Path=/", f"Max-Age={options.cookie_max_age}",
             "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def is_html(content_type: str | None) -> bool:
    """Whether a response's content type is an HTML page."""
    if not content_type:
        return False
    return content_type.split(";")[0].strip().lower() == "text/html"


def page_status(status: int) -> bool:
    """Whether a response with this status carries a page (not 1xx, 204 or 304)."""
    return status >= 200 and status not in (204, 304)


def keys_document(options: WebOptions, method: str, path: str) -> bytes | None:
    """The JWK set to answer with, when the request is ``GET`` of the bootstrap's keys path."""
    boot = options.bootstrap
    if boot is None or boot.keys_path is None or method != "GET" or path != boot.keys_path:
        return None
    return json.dumps(boot.signer.jwks(), separators=(",", ":")).encode("ascii")


KEYS_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "public, max-age=3600"))
"""The headers of :func:`keys_document`'s answer."""


def page_decoration(manager: ExperimentManager, options: WebOptions) -> tuple[str, str]:
    """The page's body classes (space-separated) and its data block.

    With a bootstrap the block is the signed payload of the request's unit, and its
    experiments get body classes too (an ``mpo`` override read by the manager wins; a payload
    with hashed names adds no classes, as they would reveal the names, nor does an entry whose
    condition the browser decides). When the payload cannot be built or signed, the error is
    logged and the page gets no block (and no payload classes): the browser SDK then applies no
    group, the page shows the default experience.
    """
    result = manager.enrollment_result()
    boot = options.bootstrap
    if boot is None:
        block = (f'<script type="application/json" id="{CONFIG_ELEMENT_ID}">'
                 f"{json_for_script(result.to_js_config())}</script>")
    else:
        try:
            payload = manager.client_payload(boot.payload)
            block = render_bootstrap(boot.signer.sign(payload))
        except Exception:  # the page must not break: without a block the SDK applies no group
            log.exception("building or signing the client payload failed; no bootstrap")
            return manager.body_classes(result, options.class_prefix), ""
        if not payload.get("salt"):
            for name, entry in decided_entries(payload):
                result.add_assignment(name, entry["group"], entry["subject_id"])
    return manager.body_classes(result, options.class_prefix), block


def decorate_html(
    body: bytes, content_type: str, manager: ExperimentManager, options: WebOptions
) -> bytes | None:
    """``body`` (a whole, uncompressed page) with the data block and the body classes
    (:func:`page_decoration`), or ``None`` when the page has no ``<body>`` tag (as an HTML
    tokenizer reads it) or its charset is not ASCII-compatible (then it is sent as it is)."""
    scanner = BodyScanner()
    found = scanner.scan(body)
    if found is None:
        return None
    decoration = encoded_decoration(manager, options, content_type)
    if decoration is None:
        return None
    return splice_page(body, found, scanner.head_end, *decoration)


def encoded_decoration(manager: ExperimentManager, options: WebOptions,
                       content_type: str) -> tuple[bytes, bytes] | None:
    """The body classes and the data block (:func:`page_decoration`) in the page's charset, or
    ``None`` when that charset cannot carry them (:func:`page_charset`)."""
    charset = page_charset(content_type)
    if charset is None:
        return None
    classes, block = page_decoration(manager, options)
    try:
        return classes.encode(charset), block.encode(charset)
    except UnicodeError:
        return None


def page_charset(content_type: str) -> str | None:
    """The page's charset (UTF-8 unless declared), or ``None`` when it is unknown or not
    ASCII-compatible (UTF-16, ISO-2022-JP...): markup found by byte scanning would then not be
    markup."""
    match = _CHARSET.search(content_type)
    charset = match.group(1) if match else "utf-8"
    try:
        name = codecs.lookup(charset).name
        if name.startswith(_NOT_ASCII_COMPATIBLE) or "<body>".encode(charset) != b"<body>":
            return None
    except (LookupError, UnicodeError):
        return None
    return charset
