"""Decorated trap pages in headless Chromium: the classes land on the body element the browser
builds, the head's scripts still run, and the data block parses."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import unavailable
from splitlab.core.decoration import splice_page
from splitlab.core.html_scan import BodyScanner

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
HEAD = "<head><script>window.ran = '<body class=trap>' + '<!-- <body> -->';</script></head>"
TRAPS = [
    "<!doctype html><html>" + HEAD + "<body class='page'>x</body></html>",
    "<!-- <body> --><script><!--<script></script><body></script>--></script><body id=real>",
    "<template><body data-t></template><body id=real>",
    "<p>x<template><body data-t></template>",
    "<div data-x='<body>'></div><svg><![CDATA[<body>]]></svg><body id=real>",
    "<textarea><body></textarea><title><body></title><body id=real>",
]


@pytest.mark.parametrize("page", TRAPS)
def test_chromium_puts_the_classes_on_its_body(page: str) -> None:
    if not CHROMIUM.exists():
        unavailable("Debian's chromium is not installed (/usr/bin/chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    scanner = BodyScanner()
    span = scanner.scan(page.encode())
    block = b'<script type="application/json" id="splitlab-config">{"ok":1}</script>'
    decorated = page.encode() if span is None else splice_page(
        page.encode(), span, scanner.head_end, b"zz-marker", block)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM))
        tab = browser.new_page()
        tab.set_content(decorated.decode())
        classes = tab.evaluate("[...document.body.classList]")
        config = tab.evaluate("document.getElementById('splitlab-config')?.textContent")
        ran = tab.evaluate("window.ran || null")
        browser.close()
    if span is None:  # the only page without an honoured body tag
        assert page.startswith("<p>x<template>") and classes == []
        return
    assert "zz-marker" in classes and config == '{"ok":1}'
    if HEAD in page:
        assert ran == "<body class=trap><!-- <body> -->"
