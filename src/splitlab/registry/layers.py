"""A layer's bins: which ranges are held, which are free, and where N bins fit.

Pure functions of half-open ranges ``(lo, hi)`` inside ``[0, BINS)`` (DESIGN.md, sl-v2 "Layer").
The registry decides which experiments hold a range (:mod:`splitlab.registry.references`);
these functions only do the arithmetic, so a property test can drive them alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from splitlab.core.slv2 import BINS

Range = tuple[int, int]


def free_ranges(held: Iterable[Range], bins: int = BINS) -> list[Range]:
    """The maximal ranges of ``[0, bins)`` that no range of ``held`` covers, in order."""
    free: list[Range] = []
    cursor = 0
    for low, high in sorted(held):
        if low > cursor:
            free.append((cursor, low))
        cursor = max(cursor, high)
    if cursor < bins:
        free.append((cursor, bins))
    return free


def largest(free: Iterable[Range]) -> Range | None:
    """The first of the largest free ranges (``None`` when nothing is free)."""
    best: Range | None = None
    for low, high in free:
        if best is None or high - low > best[1] - best[0]:
            best = (low, high)
    return best


def first_fit(free: Iterable[Range], size: int) -> Range | None:
    """``[lo, lo + size)`` at the start of the first free range that holds ``size`` bins."""
    for low, high in free:
        if high - low >= size:
            return (low, low + size)
    return None


def room(own: Range, free: Iterable[Range]) -> Range:
    """``own`` widened by the free ranges that touch it on either side: where it can grow."""
    low, high = own
    for free_low, free_high in free:
        if free_high == own[0]:
            low = free_low
        if free_low == own[1]:
            high = free_high
    return (low, high)


def grow_in_place(own: Range, free: Iterable[Range], size: int) -> Range | None:
    """A range of ``size`` bins that contains ``own`` and otherwise uses only free bins next to
    it (to the right first, then to the left); ``None`` when the space around it is too small.
    ``size`` at most ``own``'s keeps ``own`` (a range never shrinks in place)."""
    low, high = own
    if size <= high - low:
        return own
    room_low, room_high = room(own, free)
    if room_high - room_low < size:
        return None
    start = low if low + size <= room_high else room_high - size
    return (start, start + size)
