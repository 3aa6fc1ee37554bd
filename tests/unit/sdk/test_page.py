"""The page rewriter's outcomes: which pages cannot be decorated, how that is counted, and what
happens to the exposures held for them."""

from __future__ import annotations

import zlib

import pytest

from splitlab.sdk.page import PageContext, PageResponse, PageRewriter
from splitlab.sdk.web import WebOptions

from .compress_helpers import PAGE, compress
from .sdk_helpers import make, row

ROWS = [row("anon-banner-test", "edge-unique")]


def rewrite(body: bytes, content_type: str = "text/html", coding: str | None = None,
            brotli: object | None = None, pieces: int = 1):  # type: ignore[no-untyped-def]
    import brotli as brotli_module

    client, _, sender = make(ROWS)
    manager = client.manager(anonymous_id="M" * 20)
    manager.hold_exposures()
    manager.get_experiment("anon-banner-test").send_exposure()
    assert sender.events == []  # held
    context = PageContext(WebOptions(), client.metrics,
                          brotli_module if brotli == "default" else brotli)
    rewriter = PageRewriter(manager, context, PageResponse(content_type, coding, head=False))
    step = max(1, len(body) // pieces)
    out = b"".join(rewriter.feed(body[i:i + step]) for i in range(0, len(body), step))
    out += rewriter.finish()
    return out, rewriter.outcome, client, sender


@pytest.mark.parametrize(("case", "reason"), [
    ("br-without-binding", "encoding"), ("corrupt-gzip", "encoding"), ("two-codings", "encoding"),
    ("utf-16", "charset"), ("document-without-body", "no_body_tag"),
])
def test_pages_that_cannot_be_decorated_are_sent_as_made_counted_and_not_exposed(
        case: str, reason: str) -> None:
    body, content_type, coding = PAGE.encode(), "text/html", None
    if case == "br-without-binding":
        body, coding = compress("br", body), "br"
    elif case == "corrupt-gzip":
        body, coding = b"\x1f\x8b\x08\x00garbage" * 10, "gzip"
    elif case == "two-codings":
        body, coding = compress("gzip", body), "gzip, br"
    elif case == "utf-16":
        body, content_type = PAGE.encode("utf-16"), "text/html; charset=utf-16"
    else:
        body = b"<!doctype html><html><head><title>x</title></head><p>no body tag"
    out, outcome, client, sender = rewrite(body, content_type, coding, pieces=3)
    assert out == body
    assert outcome == reason
    assert client.metrics.value("splitlab_sdk_undecorated_pages_total", {"reason": reason}) == 1
    assert sender.events == []
    assert client.metrics.value("splitlab_sdk_events_dropped_total",
                                {"reason": "page_not_decorated"}) == 1
    assert client.metrics.value("splitlab_sdk_exposures_total", {
        "experiment": "anon-banner-test", "group": "control", "source": "sdk"}) + \
        client.metrics.value("splitlab_sdk_exposures_total", {
            "experiment": "anon-banner-test", "group": "treatment", "source": "sdk"}) == 0


@pytest.mark.parametrize("pieces", [1, 7, 5000])
def test_decorated_pages_release_their_exposures(pieces: int) -> None:
    body = compress("gzip", PAGE.encode())
    out, outcome, _client, sender = rewrite(body, coding="gzip", pieces=pieces)
    assert outcome == "decorated"
    assert b"splitlab-config" in zlib.decompress(out, 31)
    assert [e["action"] for e in sender.events] == ["experiment_exposure"]


def test_fragments_are_not_pages() -> None:
    out, outcome, client, sender = rewrite(b"<li>an htmx fragment</li>")
    assert (out, outcome) == (b"<li>an htmx fragment</li>", "fragment")
    assert len(sender.events) == 1
    assert client.metrics.render().count("undecorated") == 0
