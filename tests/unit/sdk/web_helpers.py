"""Reading decorated pages back with the standard library's HTML parser."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any


class PageReader(HTMLParser):
    """Collects the body's classes and the splitlab config data block."""

    def __init__(self) -> None:
        super().__init__()
        self.body_classes: list[str] = []
        self.config: dict[str, Any] | None = None
        self.blocks = 0
        self._in_config = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "body":
            self.body_classes = (values.get("class") or "").split()
        if tag == "script" and values.get("id") == "splitlab-config":
            assert values.get("type") == "application/json"
            self.blocks += 1
            self._in_config = True

    def handle_data(self, data: str) -> None:
        if self._in_config:
            self.config = json.loads(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_config = False


def read_page(text: str) -> PageReader:
    reader = PageReader()
    reader.feed(text)
    return reader
