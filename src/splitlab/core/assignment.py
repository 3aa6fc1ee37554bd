"""Assignment: algorithm ``tk-v1``, bit-for-bit compatible with Wikimedia's Test Kitchen, and
its weighted successor ``sl-v2``.

``subject_id = sha256_hex(str(identifier) + name)``; ``h = int(subject_id[:6], 16) / 2**24``;
``scaled = h * S``; in sample when ``scaled - floor(scaled) < rate``; the group is the owner of
slot ``floor(scaled)``. For ``tk-v1``, ``S`` is the number of groups and slot ``k`` belongs to
``groups[k]``; for ``sl-v2``, ``S`` is the sum of the site's reduced shares and the slots are
handed out in group order (:class:`splitlab.core.slv2.SiteSplit`), and the unit must first pass
the experiment's gates (holdouts, layer, targeting). The arithmetic is exact in binary floating
point (a 24-bit fraction times an integer below 2**14), so every language that follows these
steps gets the same answer.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from hashlib import sha256
from typing import Any, NamedTuple, overload

from splitlab.core.model import Experiment

try:  # the optional C accelerator; the Python functions below are the reference
    from splitlab.core import _tkv1  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on whether the extension was built
    _tkv1 = None

ACCELERATED = _tkv1 is not None
"""Whether :func:`assign` and :func:`assign_batch` run through the C accelerator."""

Identifier = int | str
_HASH_SPACE = float(1 << 24)
_PLAIN_TYPES = frozenset({int, str})
SUBJECT_ID_LENGTH = 64


class Assignment(NamedTuple):
    """The answer for one unit: its subject id, whether it is in sample, and its group."""

    subject_id: str
    in_sample: bool
    group: str | None


# Builds an Assignment from a 3-tuple without a Python-level __new__ (the single-call hot path).
_new_assignment = partial(tuple.__new__, Assignment)


def identifier_bytes(identifier: Identifier) -> bytes:
    """The UTF-8 bytes of ``str(identifier)``; anything but an int or a str is misuse."""
    if isinstance(identifier, str):
        return identifier.encode("utf-8")
    if isinstance(identifier, int) and not isinstance(identifier, bool):
        return b"%d" % identifier
    raise TypeError(f"identifier must be an int or a str, not {type(identifier).__name__}")


def subject_id(identifier: Identifier, experiment_name: str) -> str:
    """The per-experiment pseudonym of a unit."""
    return sha256(identifier_bytes(identifier) + experiment_name.encode("utf-8")).hexdigest()


def pure_slot(identifier: Identifier, experiment: Experiment, site: str | None = None
              ) -> Assignment:
    """The reference implementation of :func:`slot_assign`, in Python."""
    raw = identifier.encode() if type(identifier) is str else identifier_bytes(identifier)
    digest = sha256(raw + experiment.name_bytes).hexdigest()
    layout = experiment.layouts.get(site) or _layout(experiment, site)
    group = layout.groups[bisect_right(layout.bounds, digest)]
    return _new_assignment((digest, group is not None, group))


def accelerated_slot(identifier: Identifier, experiment: Experiment, site: str | None = None
                     ) -> Assignment:
    """:func:`slot_assign` through the C accelerator."""
    assert _tkv1 is not None, "the C accelerator is not built"
    layout = experiment.layouts.get(site) or _layout(experiment, site)
    result: Assignment = _tkv1.assign_one(
        identifier, experiment.name_bytes, layout.slot_groups, layout.threshold, Assignment
    )
    return result


def layout_for(experiment: Experiment, site: str | None) -> _Layout:
    """The hash layout of ``experiment`` on ``site`` (computed once, kept on the experiment)."""
    layout: _Layout = experiment.layouts.get(site) or _layout(experiment, site)
    return layout


slot_assign = pure_slot if _tkv1 is None else accelerated_slot
"""The slot's answer alone, without the ``sl-v2`` gates (for callers that ran them first)."""


def pure_assign(
    identifier: Identifier, experiment: Experiment, site: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Assignment:
    """The reference implementation of :func:`assign`, in Python."""
    result = pure_slot(identifier, experiment, site)
    if result.group is not None and experiment.layouts[site].gated and _excluded(
            identifier_bytes(identifier), experiment, attributes):
        return _new_assignment((result.subject_id, False, None))
    return result


def accelerated_assign(
    identifier: Identifier, experiment: Experiment, site: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Assignment:
    """:func:`assign` through the C accelerator (one call per unit)."""
    assert _tkv1 is not None, "the C accelerator is not built"
    layout = experiment.layouts.get(site) or _layout(experiment, site)
    result: Assignment = _tkv1.assign_one(
        identifier, experiment.name_bytes, layout.slot_groups, layout.threshold, Assignment
    )
    if result.group is not None and layout.gated and _excluded(
            identifier_bytes(identifier), experiment, attributes):
        return _new_assignment((result.subject_id, False, None))
    return result


def _excluded(raw: bytes, experiment: Experiment, attributes: Mapping[str, Any] | None) -> bool:
    return experiment.slv2 is not None and experiment.slv2.exclusion(raw, attributes) is not None


assign = pure_assign if _tkv1 is None else accelerated_assign
"""Assign one unit to ``experiment`` on ``site`` (``None``: the default rate or split).

Returns ``Assignment(subject_id, in_sample, group)``; ``group`` is ``None`` out of sample or
when an ``sl-v2`` gate keeps the unit out. ``attributes`` are what a targeting condition sees
(``None``: no attributes). ``identifier`` is an int or a str (hashed as UTF-8); anything else
raises ``TypeError``. :func:`splitlab.core.resolution.resolve` says why a unit is out.
"""


OUT_OF_SAMPLE = 255
"""The group code of a unit that is not in sample."""


@dataclass(frozen=True, slots=True)
class Assignments(Sequence[Assignment]):
    """Many assignments in a compact form that is cheap to build, join and move between processes.

    ``joined_subject_ids`` is every subject id (64 hex digits each) concatenated;
    ``group_codes[i]`` is the index of unit ``i``'s group in ``group_names``, or
    :data:`OUT_OF_SAMPLE`. Indexing and iterating give :class:`Assignment` values.
    """

    joined_subject_ids: str
    group_codes: bytes
    group_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.group_codes)

    @overload
    def __getitem__(self, index: int) -> Assignment: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Assignment]: ...

    def __getitem__(self, index: int | slice) -> Assignment | Sequence[Assignment]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        code = self.group_codes[index]
        start = (index % len(self)) * SUBJECT_ID_LENGTH
        subject = self.joined_subject_ids[start : start + SUBJECT_ID_LENGTH]
        if code == OUT_OF_SAMPLE:
            return Assignment(subject, False, None)
        return Assignment(subject, True, self.group_names[code])

    @property
    def subject_ids(self) -> list[str]:
        """Every subject id, in input order."""
        joined, width = self.joined_subject_ids, SUBJECT_ID_LENGTH
        return [joined[i : i + width] for i in range(0, len(joined), width)]

    @property
    def groups(self) -> list[str | None]:
        """Every unit's group (``None`` when out of sample), in input order."""
        names: list[str | None] = [*self.group_names]
        names += [None] * (256 - len(names))
        return [names[code] for code in self.group_codes]

    @classmethod
    def concat(cls, parts: Sequence[Assignments], group_names: tuple[str, ...]) -> Assignments:
        """Join parts computed for the same experiment, in order."""
        return cls(
            "".join(p.joined_subject_ids for p in parts),
            b"".join(p.group_codes for p in parts),
            group_names,
        )


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each group's in-sample stretch of the hash space starts and ends, for one site.

    With ``S`` slots, slot ``k`` owns hash values ``v`` in ``[ceil(k * 2**24 / S),
    ceil((k + 1) * 2**24 / S))``, where ``v * S - k * 2**24`` (the fraction of ``scaled`` times
    2**24, an integer) runs from 0 upwards; ``v`` is in sample while that integer is below
    ``rate * 2**24``, that is below its ceiling ``T``: the in-sample values are the prefix that
    ends at ``ceil((k * 2**24 + T) / S)``. ``bounds`` holds those edges as
    6-digit lower-case hex, which sorts as its number does: ``bisect_right(bounds, digest)`` is
    ``2k + 1`` inside slot ``k``'s stretch and even outside any, with no parsing of the digest.
    """

    bounds: list[str]
    groups: list[str | None]
    codes: list[int]
    threshold: float
    slot_groups: tuple[str, ...]
    """The group owning each slot (the C accelerator's form)."""
    slot_codes: bytes
    """The index of the group owning each slot (the C accelerator's batch form)."""
    gated: bool
    """Whether an ``sl-v2`` gate can still exclude a unit that has a slot."""


def _slots(experiment: Experiment, site: str | None) -> tuple[tuple[int, ...], float]:
    """Each slot's group index and the rate, on ``site``."""
    if experiment.slv2 is None:
        return tuple(range(len(experiment.groups))), experiment.sample_rate.for_site(site)
    split = experiment.slv2.split_for(site)
    return ((), 0.0) if split is None else (split.owners, split.rate)


def _layout(experiment: Experiment, site: str | None) -> _Layout:
    owners, rate = _slots(experiment, site)
    count = len(owners)
    threshold = rate * _HASH_SPACE
    ceiling = math.ceil(threshold)
    edges: list[int] = []
    for k in range(count):
        low, high = -(-(k << 24) // count), -(-((k + 1) << 24) // count)
        edges += [low, min(high, -(-((k << 24) + ceiling) // count))]
    groups: list[str | None] = [None]
    codes = [OUT_OF_SAMPLE]
    for code in owners:
        groups += [experiment.groups[code], None]
        codes += [code, OUT_OF_SAMPLE]
    bounds = [format(v, "06x") if v < 1 << 24 else "g" for v in edges]
    slot_groups = tuple(experiment.groups[code] for code in owners)
    gated = experiment.slv2 is not None and experiment.slv2.gated
    layout = _Layout(bounds, groups, codes, threshold, slot_groups, bytes(owners), gated)
    experiment.layouts[site] = layout
    return layout


def pure_assign_batch(
    identifiers: Iterable[Identifier], experiment: Experiment, site: str | None = None
) -> Assignments:
    """The reference implementation of :func:`assign_batch`, in Python."""
    units = identifiers if isinstance(identifiers, list) else list(identifiers)
    if set(map(type, units)) <= _PLAIN_TYPES:  # the common case: skip per-item type checks
        name = experiment.name
        subject_ids = [sha256((str(i) + name).encode()).hexdigest() for i in units]
    else:
        salt = experiment.name_bytes
        subject_ids = [sha256(identifier_bytes(i) + salt).hexdigest() for i in units]
    layout = experiment.layouts.get(site) or _layout(experiment, site)
    bounds, codes = layout.bounds, layout.codes
    joined = "".join(subject_ids)
    found = bytes([codes[bisect_right(bounds, d)] for d in subject_ids])
    return Assignments(joined, _gate(units, experiment, layout, found), experiment.groups)


def accelerated_assign_batch(
    identifiers: Iterable[Identifier], experiment: Experiment, site: str | None = None
) -> Assignments:
    """:func:`assign_batch` through the C accelerator (one call for the whole batch)."""
    assert _tkv1 is not None, "the C accelerator is not built"
    units = identifiers if isinstance(identifiers, (list, tuple)) else list(identifiers)
    layout = experiment.layouts.get(site) or _layout(experiment, site)
    joined, codes = _tkv1.assign_batch(
        units, experiment.name_bytes, layout.slot_codes, layout.threshold
    )
    return Assignments(joined, _gate(units, experiment, layout, codes), experiment.groups)


def _gate(units: Sequence[Identifier], experiment: Experiment, layout: _Layout,
          codes: bytes) -> bytes:
    """``codes`` with the units an ``sl-v2`` gate excludes (no attributes) out of sample."""
    if not layout.gated:
        return codes
    gated = bytearray(codes)
    for index, code in enumerate(codes):
        if code != OUT_OF_SAMPLE and _excluded(identifier_bytes(units[index]), experiment, None):
            gated[index] = OUT_OF_SAMPLE
    return bytes(gated)


assign_batch = pure_assign_batch if _tkv1 is None else accelerated_assign_batch
""":func:`assign` over many identifiers (same answers, in order, without attributes), as fast as
the hash allows."""
