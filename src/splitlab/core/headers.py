"""The ``mpo`` override parameter and the ``X-Experiment-Enrollments`` header.

``mpo`` (QA forcing a group): ``exp:group;exp2:group2``.
``X-Experiment-Enrollments`` (edge → application): ``exp=group;exp2=group2;``. Names follow the
rules below; one malformed entry invalidates the whole header, because a partly-read header would
put a unit in some experiments and silently drop it from others.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from splitlab.errors import HeaderError, OverrideError

EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9][-_.A-Za-z0-9]{7,62}")
GROUP_NAME = re.compile(r"[A-Za-z0-9][-_.A-Za-z0-9]{0,62}")
_LOOSE_NAME = re.compile(r"[^\s:;=]+")


def parse_overrides(text: str) -> dict[str, str]:
    """Parse an ``mpo`` value into experiment → group. Empty entries are skipped.

    Raises :class:`~splitlab.errors.OverrideError` naming the first malformed entry.
    """
    overrides: dict[str, str] = {}
    for entry, name, sep, group in _entries(text, ":"):
        name, group = name.strip(), group.strip()
        if not sep or not _LOOSE_NAME.fullmatch(name) or not _LOOSE_NAME.fullmatch(group):
            raise OverrideError(f"malformed override {entry!r}: expected 'experiment:group'")
        overrides[name] = group
    return overrides


def parse_enrollments_header(value: str) -> dict[str, str]:
    """Parse ``exp=group;exp2=group2;`` into experiment → group.

    Raises :class:`~splitlab.errors.HeaderError` when any entry is malformed or repeated.
    """
    enrollments: dict[str, str] = {}
    for entry, name, sep, group in _entries(value, "="):
        if not sep:
            raise HeaderError(f"entry {entry!r} has no '='")
        _check_pair(name, group)
        if name in enrollments:
            raise HeaderError(f"experiment {name!r} appears twice")
        enrollments[name] = group
    return enrollments


def format_enrollments_header(enrollments: Mapping[str, str]) -> str:
    """Serialize experiment → group as ``exp=group;exp2=group2;`` (raises on invalid names)."""
    for name, group in enrollments.items():
        _check_pair(name, group)
    return "".join(f"{name}={group};" for name, group in enrollments.items())


def _entries(text: str, separator: str) -> Iterator[tuple[str, str, str, str]]:
    """Each non-empty ``;``-separated entry, stripped, with its parts around ``separator``."""
    for entry in text.split(";"):
        entry = entry.strip()
        if entry:
            yield (entry, *entry.partition(separator))


def _check_pair(name: str, group: str) -> None:
    if not EXPERIMENT_NAME.fullmatch(name):
        raise HeaderError(
            f"invalid experiment name {name!r}: 8 to 63 of A-Z a-z 0-9 - _ . starting alphanumeric"
        )
    if not GROUP_NAME.fullmatch(group):
        raise HeaderError(
            f"invalid group name {group!r}: 1 to 63 of A-Z a-z 0-9 - _ . starting alphanumeric"
        )
