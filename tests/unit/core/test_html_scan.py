"""The body scanner against html5lib, a tokenizer and tree builder written from the WHATWG spec.

Each generated page marks every ``<body`` start tag with its own attribute ``data-bN``; the
tree builder merges the attributes of every body tag it honours onto the one body element, so
the element's attributes name the tags a browser would honour. The scanner must pick the first
of them (or none when there are none), whether the page arrives whole or in pieces.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitlab.core.decoration import splice_page, with_classes
from splitlab.core.html_scan import BodyScanner

html5lib = pytest.importorskip("html5lib")

PIECES = [
    "<!doctype html>", "<html>", "<head>", "</head>", "<title>", "</title>", "<script>",
    "</script>", "</script >", "<!--", "-->", "--!>", "<!-->", "<!--->", "<style>", "</style>",
    "<textarea>", "</textarea>", "<![CDATA[", "]]>", "<svg>", "</svg>", "<math>", "<p>", "x",
    ">", "<", "\"", "'", "=", "<noscript>", "</noscript>",
    "<div title=\"", "<div title='", "<a b=c\"d>", "<script><!--<script>", "<?php ?>", "</x y='>'>",
    "<plaintext>", "<meta charset=utf-8>", "<div data-x=\"<body>\">", " ", "\n", "<xmp>", "</xmp>",
    "<iframe>", "</iframe>", "<a =b>", "<a b=>", "< body>", "</", "<!", "<!x>", "/", "<br/>",
]


# No <template>: html5lib 1.1 predates the rule that a body tag inside a template is ignored
# (Chromium ignores it; tests/e2e/test_body_scan_browser.py checks the template cases there).


def body_tags(draw_pieces: list[str], bodies: list[int]) -> str:
    out, n = [], 0
    for piece, body_at in zip(draw_pieces, bodies, strict=True):
        out.append(piece)
        if body_at % 5 == 0:
            n += 1
            out.append(f"<body data-b{n}>" if body_at % 2 else f"<BODY\tdata-b{n}=''>")
    return "".join(out)


def honoured(page: str) -> list[int]:
    """The body tags (their numbers) the spec's tree builder merged onto the body element."""
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    tree = parser.parse(page, scripting=True)
    body = tree.find("body")
    if body is None:
        return []
    return sorted(int(m.group(1)) for m in (re.fullmatch(r"data-b(\d+)", k) for k in body.attrib)
                  if m)


def found_number(page: bytes, pieces: int) -> int | None:
    scanner = BodyScanner()
    if pieces <= 1:
        span = scanner.scan(page)
    else:
        step, span = max(1, len(page) // pieces), None
        for end in range(step, len(page) + step, step):
            span = scanner.scan(page[:end])
            if span is not None:
                break
    if span is None:
        return None
    match = re.search(rb"data-b(\d+)", page[span[0]:span[1]])
    assert match is not None, page[span[0]:span[1]]
    return int(match.group(1))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PIECES), st.integers(0, 9)), max_size=25),
       st.integers(1, 7))
def test_the_scanner_finds_the_body_tag_the_spec_honours(parts: list[tuple[str, int]],
                                                         pieces: int) -> None:
    page = body_tags([p for p, _ in parts], [b for _, b in parts])
    expected = honoured(page)
    got = found_number(page.encode(), pieces)
    if got is None:
        assert expected == [], page
    else:
        assert expected and got == expected[0], page


CASES = {
    "script in head": ('<html><head><script>var s = "<body class=x>";</script></head>'
                       '<body class="real">', 'class="real"'),
    "comment": ("<!-- <body> --><body id=real>", "id=real"),
    "attribute value": ('<div data-x="<body>"></div><body id=real>', "id=real"),
    "escaped script": ("<script><!--<script></script><body></script>--></script><body id=real>",
                       "id=real"),
    "style": ("<style>/* <body> */</style><body id=real>", "id=real"),
    "textarea": ("<textarea><body></textarea><body id=real>", "id=real"),
    "template": ("<template><body></template><body id=real>", "id=real"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_named_traps(name: str) -> None:
    page, marker = CASES[name]
    span = BodyScanner().scan(page.encode())
    assert span is not None
    assert marker.encode() in page.encode()[span[0]:span[1]]
    assert honoured(page.replace(marker, marker + " data-b1")) == [1]


def test_the_data_block_goes_before_the_real_head_end() -> None:
    page = b"<head><script>'</head>'</script></head><body>"
    scanner = BodyScanner()
    span = scanner.scan(page)
    assert span is not None
    out = splice_page(page, span, scanner.head_end, b"k", b"<i>")
    assert out == b"<head><script>'</head>'</script><i></head><body class=\"k\">"


@pytest.mark.parametrize(("tag", "expected"), [
    (b"<body>", b'<body class="k">'),
    (b"<body class='a b'>", b"<body class='a b k'>"),
    (b'<body data-c="class=no" class=a>', b'<body data-c="class=no" class="a k">'),
    (b"<body class>", b'<body class="k">'),
    (b'<body class="" class="b">', b'<body class="k" class="b">'),
    (b"<BODY CLASS = 'x'>", b"<BODY CLASS = 'x k'>"),
])
def test_classes_land_in_the_first_class_attribute(tag: bytes, expected: bytes) -> None:
    assert with_classes(tag, b"k") == expected
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    body = parser.parse(expected.decode()).find("body")
    assert "k" in body.get("class", "").split()
