"""Decorating one HTML response on its way out, whatever its content coding and however it is
sent (one body or a stream).

The body is decoded (``gzip``, ``deflate``, ``br`` where a Brotli binding is importable) and
scanned as it arrives; once the ``<body>`` tag is found, the page so far is decorated,
re-encoded in the response's coding and sent, and the rest of the body is re-encoded as it
passes. The request's exposures, held by the middleware since the request began, are settled
when the outcome is known: sent when the page was decorated (or is a fragment with no
``<body>`` to decorate), dropped when a page could not be decorated, which is logged and counted
in ``splitlab_sdk_undecorated_pages_total{reason}`` (``encoding``, ``charset``,
``no_body_tag``). A ``HEAD`` response is decorated like its ``GET`` but shows nothing, so its
exposures are dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from splitlab.core.decoration import splice_page
from splitlab.core.html_scan import BodyScanner
from splitlab.sdk.encoding import Codec, CodingError, Decoder, Encoder, codec_for
from splitlab.sdk.manager import ExperimentManager
from splitlab.sdk.metrics import Metrics
from splitlab.sdk.web import WebOptions, encoded_decoration, page_charset

log = logging.getLogger("splitlab.sdk")
SCAN_LIMIT = 1 << 20
"""Decoded bytes searched for the ``<body>`` tag before the page is given up on."""
_SEEN = frozenset({"decorated", "fragment", "empty"})


@dataclass(frozen=True, slots=True)
class PageContext:
    """What every page of one middleware shares: its options, the client's metrics and the
    Brotli binding (``None``: ``br`` pages cannot be decorated)."""

    options: WebOptions
    metrics: Metrics
    brotli: Any | None


@dataclass(frozen=True, slots=True)
class PageResponse:
    """The response being decorated: its ``Content-Type`` and ``Content-Encoding`` values and
    whether it answers a ``HEAD`` request."""

    content_type: str
    content_encoding: str | None
    head: bool


class PageRewriter:
    """Decorates one HTML response: :meth:`feed` each piece of the body as sent by the app,
    send what it returns, then send what :meth:`finish` returns. :attr:`outcome` is ``None``
    until decided, then ``decorated``, ``fragment`` (no ``<body>`` and no sign of a whole
    document), ``empty``, or the reason the page was not decorated."""

    def __init__(self, manager: ExperimentManager, context: PageContext,
                 response: PageResponse) -> None:
        self._manager, self._context, self._response = manager, context, response
        self._raw: list[bytes] = []
        self._page = bytearray()
        self._scanner = BodyScanner()
        self._decoder: Decoder | None = None
        self._encoder: Encoder | None = None
        self._codec: Codec | None = None
        self._passing = False
        self.outcome: str | None = None
        coding = (response.content_encoding or "").strip().lower()
        if page_charset(response.content_type) is None:
            self.give_up("charset")
        elif coding and coding != "identity":
            self._codec = codec_for(coding, context.brotli)
            if self._codec is None:
                self.give_up("encoding")
            else:
                self._decoder = self._codec.decoder()

    def feed(self, data: bytes) -> bytes:
        """What to send now, given the next piece of the app's body."""
        if self._passing:
            return data
        if self.outcome == "decorated":
            return self._recode(data)
        self._raw.append(data)
        try:
            self._page += self._decoder.decode(data) if self._decoder else data
        except CodingError:
            return self.give_up("encoding")
        found = self._scanner.scan(self._page)  # type: ignore[arg-type]
        if found is not None:
            return self._decorate(found)
        if self._scanner.text_only or len(self._page) > SCAN_LIMIT:
            return self._without_body()
        return b""

    def finish(self) -> bytes:
        """What is left to send once the app's body has ended."""
        if self.outcome == "decorated":
            return self._encoder.finish() if self._encoder is not None else b""
        if self._passing:
            return b""
        return self._without_body()

    def abandon(self) -> None:
        """The body failed (or was cut off) before the outcome was known: nothing was seen, so
        the held exposures are dropped (``request_failed``); the page is not counted."""
        if self.outcome is None:
            self.outcome, self._passing = "failed", True
            self._manager.release_exposures(False, "request_failed")

    def _decorate(self, found: tuple[int, int]) -> bytes:
        response = self._response
        decoration = encoded_decoration(self._manager, self._context.options,
                                        response.content_type)
        if decoration is None:
            return self.give_up("charset")
        page = splice_page(bytes(self._page), found, self._scanner.head_end, *decoration)
        self._raw, self._page = [], bytearray()
        self._settle("decorated")
        if self._codec is None:
            return page
        self._encoder = self._codec.encoder()
        return self._encoder.encode(page)

    def _recode(self, data: bytes) -> bytes:
        if self._decoder is None or self._encoder is None:
            return data
        try:
            return self._encoder.encode(self._decoder.decode(data))
        except CodingError:
            log.exception("the rest of a decorated page is not valid %s; it is cut short",
                          self._response.content_encoding)
            self._decoder = None
            return b""

    def _without_body(self) -> bytes:
        if not self._page.strip():
            return self.give_up("empty")
        return self.give_up("no_body_tag" if self._scanner.document else "fragment")

    def give_up(self, outcome: str) -> bytes:
        """Stop: the body (what was held back of it) is sent as the app made it, and the page
        counts as not decorated for ``outcome``."""
        raw, self._raw, self._page = b"".join(self._raw), [], bytearray()
        self._passing = True
        self._settle(outcome)
        return raw

    def _settle(self, outcome: str) -> None:
        self.outcome = outcome
        if self._response.head:
            self._manager.release_exposures(False, "head_request")
            return
        if outcome in _SEEN:
            self._manager.release_exposures(True)
            return
        log.warning("an HTML page was sent undecorated (%s); its exposures are not sent",
                    outcome)
        self._context.metrics.undecorated_page(outcome)
        self._manager.release_exposures(False)


def settle_other(manager: ExperimentManager, head: bool) -> None:
    """Settle the exposures of a response that is not an HTML page (an API call shows what it
    answers): sent, unless it answers a ``HEAD`` request."""
    if head:
        manager.release_exposures(False, "head_request")
    else:
        manager.release_exposures(True)
