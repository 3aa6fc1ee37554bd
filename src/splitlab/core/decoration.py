"""The enrollment result of a request and how a page is decorated with it.

A page gets a JS config var ``{overrides, enrolled, assigned, subject_ids}`` and body classes
``<prefix>-experiment-<name>`` and ``<prefix>-experiment-<name>-<group>``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from splitlab.core.html_scan import class_attribute
from splitlab.core.model import canonical_json

_WHITESPACE = re.compile(r"\s+")
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                  "\u2029": "\\u2029"}


@dataclass(slots=True)
class EnrollmentResult:
    """What one request knows: overrides, enrolled experiments, groups and subject ids.

    Overridden experiments are enrolled and assigned the forced group, and are listed in
    ``overrides`` so that nothing is sent for them.
    """

    overrides: dict[str, str] = field(default_factory=dict)
    enrolled: list[str] = field(default_factory=list)
    assigned: dict[str, str] = field(default_factory=dict)
    subject_ids: dict[str, str] = field(default_factory=dict)

    def add_assignment(self, experiment: str, group: str, subject_id: str) -> None:
        """Record an enrollment (an override already recorded for it wins)."""
        if experiment in self.overrides:
            return
        if experiment not in self.assigned:
            self.enrolled.append(experiment)
        self.assigned[experiment] = group
        self.subject_ids[experiment] = subject_id

    def add_override(self, experiment: str, group: str) -> None:
        """Force ``experiment`` to ``group``; overridden experiments carry no subject id."""
        if experiment not in self.assigned:
            self.enrolled.append(experiment)
        self.overrides[experiment] = group
        self.assigned[experiment] = group
        self.subject_ids.pop(experiment, None)

    def to_js_config(self) -> dict[str, Any]:
        """The JS config var's value."""
        return {
            "overrides": dict(self.overrides),
            "enrolled": list(self.enrolled),
            "assigned": dict(self.assigned),
            "subject_ids": dict(self.subject_ids),
        }


def class_token(text: str) -> str:
    """Lower-case, whitespace runs to ``-``, escaped for a class attribute."""
    return html.escape(_WHITESPACE.sub("-", text.strip().lower()), quote=True)


def body_classes(result: EnrollmentResult, prefix: str = "xlab") -> list[str]:
    """The body classes for every assigned experiment, in enrollment order."""
    classes: list[str] = []
    for name in result.enrolled:
        base = f"{class_token(prefix)}-experiment-{class_token(name)}"
        classes += [base, f"{base}-{class_token(result.assigned[name])}"]
    return classes


def json_for_script(value: object) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no line separators)."""
    text = canonical_json(value)
    for char, escape in _SCRIPT_UNSAFE.items():
        text = text.replace(char, escape)
    return text


def splice_page(page: bytes, body: tuple[int, int], head_end: int, classes: bytes,
                block: bytes) -> bytes:
    """``page`` with ``block`` inserted before the ``</head>`` end tag starting at ``head_end``
    (right after the body tag when ``head_end`` is negative) and ``classes`` (escaped for an
    attribute) added to the body start tag at ``page[body[0]:body[1]]``, as located by
    :class:`splitlab.core.html_scan.BodyScanner`."""
    start, end = body
    tag = page[start:end]
    new_tag = with_classes(tag, classes) if classes else tag
    if head_end >= 0:
        return page[:head_end] + block + page[head_end:start] + new_tag + page[end:]
    return page[:start] + new_tag + block + page[end:]


def with_classes(tag: bytes, classes: bytes) -> bytes:
    """A complete start tag with ``classes`` appended to its (first) class attribute, which is
    added when absent and quoted when it was not."""
    found = class_attribute(tag)
    if found is None:
        return tag[:5] + b' class="' + classes + b'"' + tag[5:]
    start, end, quote = found
    if quote < 0:
        return tag[:end] + b'="' + classes + b'"' + tag[end:]
    value = tag[start:end]
    merged = value + b" " + classes if value.strip(b" \t\n\f\r") else classes
    if quote == 0:
        return tag[:start] + b'"' + merged.replace(b'"', b"&quot;") + b'"' + tag[end:]
    return tag[:start] + merged + tag[end:]
