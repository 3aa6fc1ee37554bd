"""Where a page's ``<body>`` start tag is, found the way an HTML tokenizer would find it.

The scan follows the WHATWG tokenizer's states that decide whether a ``<body`` is markup:
comments (``<!-- -->``, ``<!-->``, ``--!>``), bogus comments (``<?...>``, ``<!...>``, and
``<![CDATA[...>`` outside foreign content), doctypes, attribute values in quotes, the raw-text and
RCDATA elements (``script`` with its escaped states, ``style``, ``textarea``, ``title``, ``xmp``,
``iframe``, ``noembed``, ``noframes``, ``noscript`` as in a browser with scripting), ``plaintext``,
CDATA sections inside ``<svg>``/``<math>``, and ``<template>`` contents (whose ``<body>`` the
tree builder ignores). It reads bytes of an ASCII-compatible encoding and can resume as more
bytes arrive (a streamed page). Well-formed tags take one regular-expression match each; other
tags take the tokenizer's attribute states step by step.
"""

from __future__ import annotations

import re

_VALUE = rb"(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >\"'=<`][^\t\n\f\r >]*+)"
_ATTRS = (rb"(?:[\t\n\f\r /]++|[^\t\n\f\r />=][^\t\n\f\r />=]*+"
          rb"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+" + _VALUE + rb")?+)*+")
_TAG = re.compile(rb"<(/?)([a-zA-Z][^\t\n\f\r />]*+)(" + _ATTRS + rb")>")
_SPECIAL = (rb"script|style|textarea|title|xmp|iframe|noembed|noframes|noscript|plaintext|body|"
            rb"head|html|template|svg|math")
_SKIP = re.compile(  # text, and tags whose names change nothing here, in one match
    rb"(?:[^<]++|<(?=[^!/?a-zA-Z])|</?(?!(?i:" + _SPECIAL + rb")[\t\n\f\r />])"
    rb"[a-zA-Z][^\t\n\f\r />]*+" + _ATTRS + rb">)*+")
_TAG_NAME = re.compile(rb"</?([a-zA-Z][^\t\n\f\r />]*+)")
_ATTR_NAME = re.compile(rb"[^\t\n\f\r />=]*+")
_UNQUOTED = re.compile(rb"[^\t\n\f\r >]*+")
_COMMENT_END = re.compile(rb"--!?>")
_WS = frozenset(b"\t\n\f\r ")
_RAW_TEXT = frozenset({b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed",
                       b"noframes", b"noscript"})
_FOREIGN = frozenset({b"svg", b"math"})
_BREAKOUT = frozenset(b"b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 "
                      b"h6 head hr i img li listing menu meta nobr ol p pre ruby s small span "
                      b"strong strike sub sup table tt u ul var".split())
_END_TAGS: dict[bytes, re.Pattern[bytes]] = {
    name: re.compile(rb"</" + name + rb"[\t\n\f\r />]", re.IGNORECASE)
    for name in (*_RAW_TEXT, b"script")}
_SCRIPT_DATA = re.compile(rb"<!--|</script[\t\n\f\r />]", re.IGNORECASE)
_SCRIPT_ESCAPED = re.compile(rb"-->|</script[\t\n\f\r />]|<script[\t\n\f\r />]", re.IGNORECASE)
_SCRIPT_DOUBLE = re.compile(rb"-->|</script[\t\n\f\r />]", re.IGNORECASE)


class BodyScanner:
    """Scans one page for its first ``<body>`` start tag the tree builder would honour.

    Call :meth:`scan` with the page so far (each call with the same bytes plus what arrived
    since); it answers the tag's ``(start, end)`` once found. Until then it keeps its place, so
    a page arriving in pieces is scanned about once. :attr:`head_end` is where the ``</head>``
    end tag before the body starts (``-1`` when absent); :attr:`document` says whether a doctype
    or an ``<html>``/``<head>`` tag was seen (a whole document rather than a fragment).
    """

    __slots__ = ("_at", "_foreign", "_template", "body", "document", "head_end", "text_only")

    def __init__(self) -> None:
        self._at = 0
        self._foreign = 0
        self._template = 0
        self.body: tuple[int, int] | None = None
        self.head_end = -1
        self.document = False
        self.text_only = False

    def scan(self, data: bytes) -> tuple[int, int] | None:
        """The ``<body>`` tag's span in ``data`` (the page so far), or ``None`` while unseen."""
        at = self._at
        while self.body is None and not self.text_only:
            if not self._foreign:
                skipped = _SKIP.match(data, at)
                at = at if skipped is None else skipped.end()
            lt = data.find(b"<", at)
            if lt < 0 or lt + 1 >= len(data):
                self._at = len(data) if lt < 0 else lt
                return None
            after = self._markup(data, lt)
            if after is None:  # the construct is not complete yet: resume at its "<"
                self._at = lt
                return None
            at = after
        self._at = at
        return self.body

    def _markup(self, data: bytes, lt: int) -> int | None:
        """Where scanning goes on after the markup starting at ``data[lt] == "<"``."""
        nxt = data[lt + 1]
        if nxt == 0x21:  # "!"
            return self._declaration(data, lt)
        if nxt == 0x3F:  # "?": a bogus comment up to ">"
            return _after(data, b">", lt + 2)
        if nxt == 0x2F:  # "/"
            if lt + 2 >= len(data):
                return None
            third = data[lt + 2]
            if third == 0x3E:
                return lt + 3
            if not _is_alpha(third):
                return _after(data, b">", lt + 2)
            return self._tag(data, lt, end=True)
        if _is_alpha(nxt):
            return self._tag(data, lt, end=False)
        return lt + 1

    def _declaration(self, data: bytes, lt: int) -> int | None:
        rest = data[lt + 2:lt + 9]
        if rest[:2] == b"--":
            return _comment_end(data, lt + 4)
        if len(rest) < 7 and (b"--".startswith(rest[:2]) or b"[CDATA[".startswith(rest)
                              or b"DOCTYPE".startswith(rest.upper())):
            return None
        if rest == b"[CDATA[" and self._foreign:
            return _after(data, b"]]>", lt + 9)
        if rest.upper() == b"DOCTYPE":
            self.document = True
        return _after(data, b">", lt + 2)

    def _tag(self, data: bytes, lt: int, end: bool) -> int | None:
        match = _TAG.match(data, lt)
        if match is not None:
            name, after = match.group(2).lower(), match.end()
            closing = match.group(3).endswith(b"/")
        else:
            name_match = _TAG_NAME.match(data, lt)
            assert name_match is not None
            slow = _slow_tag_end(data, name_match.end())
            if slow is None:
                return None
            name, after = name_match.group(1).lower(), slow
            closing = data[slow - 2] == 0x2F
        if end:
            return self._end_tag(name, lt, after)
        return self._start_tag(data, name, (lt, after), closing)

    def _end_tag(self, name: bytes, lt: int, after: int) -> int:
        if name == b"head" and self.head_end < 0 and not self._template:
            self.head_end = lt
        elif name == b"template":
            self._template = max(0, self._template - 1)
        elif name in _FOREIGN:
            self._foreign = max(0, self._foreign - 1)
        return after

    def _start_tag(self, data: bytes, name: bytes, span: tuple[int, int],
                   closing: bool) -> int | None:
        after = span[1]
        if self._foreign:
            if name in _BREAKOUT:
                self._foreign = 0
            elif name in _FOREIGN and not closing:
                self._foreign += 1
                return after
            else:
                return after
        if name == b"body":
            if not self._template:
                self.body = span
            return after
        if name in (b"html", b"head"):
            self.document = True
        elif name == b"template":
            self._template += 1
        elif name in _FOREIGN:
            self._foreign += 0 if closing else 1
        elif name == b"plaintext":
            self.text_only = True
        elif name == b"script":
            return _raw_text_end(data, _script_end(data, after), b"script")
        elif name in _RAW_TEXT:
            found = _END_TAGS[name].search(data, after)
            return _raw_text_end(data, None if found is None else found.start(), name)
        return after


def _raw_text_end(data: bytes, close: int | None, name: bytes) -> int | None:
    """After the end tag that starts at ``close`` (the raw text's end), if it is complete."""
    if close is None:
        return None
    return _slow_tag_end(data, close + 2 + len(name))


def _script_end(data: bytes, at: int) -> int | None:
    """Where the ``</script`` that ends a script starting at ``at`` begins (the tokenizer's
    script data, escaped and double-escaped states)."""
    state = 0  # 0 script data, 1 escaped, 2 double escaped
    while True:
        pattern = (_SCRIPT_DATA, _SCRIPT_ESCAPED, _SCRIPT_DOUBLE)[state]
        found = pattern.search(data, at)
        if found is None:
            return None
        token, at = found.group(0), found.end()
        if token == b"<!--":
            while data[at:at + 1] == b"-":
                at += 1
            if at >= len(data):
                return None
            state = 0 if data[at] == 0x3E else 1
        elif token == b"-->":
            state = 0
        elif token[1] == 0x2F:  # "</script"
            if state != 2:
                return found.start()
            state = 1
        else:  # "<script" while escaped
            state = 2
            at -= 1


def _comment_end(data: bytes, at: int) -> int | None:
    """After a comment whose text starts at ``at`` (just after ``<!--``)."""
    if data[at:at + 1] == b">":
        return at + 1
    if data[at:at + 2] == b"->":
        return at + 2
    if len(data) - at < 2:
        return None
    found = _COMMENT_END.search(data, at)
    return None if found is None else found.end()


def _after(data: bytes, token: bytes, at: int) -> int | None:
    found = data.find(token, at)
    return None if found < 0 else found + len(token)


def _is_alpha(byte: int) -> bool:
    return 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def _run_end(pattern: re.Pattern[bytes], data: bytes, at: int) -> int:
    found = pattern.match(data, at)
    return at if found is None else found.end()


def _slow_tag_end(data: bytes, at: int) -> int | None:
    """After the ``>`` that ends a tag whose attributes start at ``at``, following the
    tokenizer's attribute states one by one; ``None`` when the tag is not complete."""
    size, state = len(data), "before"
    while at < size:
        byte = data[at]
        if state == "name":
            at, state = _run_end(_ATTR_NAME, data, at), "after_name"
            continue
        if state == "value":
            if byte == 0x22 or byte == 0x27:
                at = data.find(bytes((byte,)), at + 1)
                if at < 0:
                    return None
                state, at = "before", at + 1
                continue
            if byte in _WS:
                at += 1
                continue
            if byte == 0x3E:
                return at + 1
            at, state = _run_end(_UNQUOTED, data, at), "before"
            continue
        if byte == 0x3E:
            return at + 1
        if byte in _WS or byte == 0x2F:
            state = "before" if byte == 0x2F else state
            at += 1
        elif byte == 0x3D and state == "after_name":
            state, at = "value", at + 1
        else:  # a new attribute's name ("=" included when it comes first)
            state, at = "name", at + 1
    return None


def class_attribute(tag: bytes) -> tuple[int, int, int] | None:
    """Where the value of a complete start tag's first ``class`` attribute is:
    ``(start, end, quote)`` with ``quote`` the quote byte, ``0`` for an unquoted value and
    ``-1`` for an attribute without a value (then ``start == end`` is the name's end).
    ``None`` when the tag has no ``class`` attribute."""
    name = _TAG_NAME.match(tag)
    at, size = (0 if name is None else name.end()), len(tag)
    while at < size:
        byte = tag[at]
        if byte in _WS or byte == 0x2F:
            at += 1
            continue
        if byte == 0x3E:
            return None
        start = at
        at = _run_end(_ATTR_NAME, tag, at + 1)
        name_end, found = at, tag[start:at].lower() == b"class"
        while at < size and tag[at] in _WS:
            at += 1
        if at >= size or tag[at] != 0x3D:
            if found:
                return name_end, name_end, -1
            continue
        at += 1
        while at < size and tag[at] in _WS:
            at += 1
        quote = tag[at] if at < size and tag[at] in (0x22, 0x27) else 0
        if quote:
            end = tag.find(bytes((quote,)), at + 1)
            span, at = (at + 1, end), end + 1
        else:
            end = _run_end(_UNQUOTED, tag, at)
            span, at = (at, end), end
        if found:
            return span[0], span[1], quote
    return None
