"""Assignment algorithm ``sl-v2``: its part of a config row, validated, and its gates.

A row chooses ``sl-v2`` with ``"algorithm": "sl-v2"`` and carries, inline, everything a reader
needs to assign without the registry::

    "traffic_split": {"default": {"control": 5, "treatment": 5}, "dewiki": {"control": 25,
                      "treatment": 25}},
    "layer": {"name": "reading-layer", "range": [0, 50000]},
    "holdouts": [{"name": "global-2026", "percent": 2.5}],
    "targeting": {"platform": "mobile", "edit_count": {"$gte": 10}}

``traffic_split`` gives each group's absolute percentage of all units, per site (``default``
for sites without their own entry; a site with neither gets no units). Percents have at most 3
decimals and sum to at most 100 per site. The shares, rate and slots follow DESIGN.md
("Assignment, algorithm sl-v2"); :class:`SiteSplit` holds them. The gates run before the slot,
in the order holdout, layer, targeting (:func:`exclusion`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import reduce
from hashlib import sha256
from typing import Any, Literal

from splitlab.core.condition_compiler import compile_condition
from splitlab.core.targeting import check_condition
from splitlab.errors import ConfigError

ALGORITHM = "sl-v2"
MAX_SHARES = 10000
"""A site's ratios must reduce to at most this many slots."""
BINS = 100000
"""Layer and holdout bins: ``[0, BINS)``."""
DEFAULT_SITE = "default"

Gate = Literal["holdout", "layer", "targeting"]


def thousandths(value: object, where: str) -> int:
    """A percent in [0, 100] with at most 3 decimals, as an integer count of 0.001 %."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(where, f"must be a percent (a number in [0, 100]), got {value!r}")
    if not 0 <= value <= 100:  # also refuses NaN
        raise ConfigError(where, f"must be in [0, 100], got {value!r}")
    exact = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    if exact * 1000 != (exact * 1000).to_integral_value():
        raise ConfigError(where, f"has more than 3 decimals: {value!r}")
    return round(value * 1000)


def percent_of(weight: int) -> int | float:
    """The wire spelling of a weight in thousandths: an integer when it is whole."""
    return weight // 1000 if weight % 1000 == 0 else weight / 1000


@dataclass(frozen=True, slots=True)
class SiteSplit:
    """One site's split. ``weights[i]`` is group ``i``'s percent × 1000; ``shares`` the weights
    divided by their gcd; ``owners[slot]`` the index of the group that owns ``slot``."""

    weights: tuple[int, ...]
    shares: tuple[int, ...]
    owners: tuple[int, ...]
    rate: float

    @classmethod
    def of(cls, weights: Sequence[int], where: str) -> SiteSplit:
        """The shares, slots and rate of ``weights`` (group order); refuses more than
        :data:`MAX_SHARES` shares."""
        positive = [w for w in weights if w > 0]
        divisor = reduce(math.gcd, positive, 0) or 1
        shares = tuple(w // divisor for w in weights)
        if sum(shares) > MAX_SHARES:
            raise ConfigError(where, f"ratios must reduce to at most {MAX_SHARES} shares "
                                     f"(these reduce to {sum(shares)})")
        owners = tuple(index for index, share in enumerate(shares) for _ in range(share))
        return cls(tuple(weights), shares, owners, sum(weights) / BINS)

    @property
    def total(self) -> int:
        """``S``: the number of slots."""
        return len(self.owners)


@dataclass(frozen=True, slots=True)
class Layer:
    """A layer of mutually exclusive experiments and this experiment's bins ``[low, high)``."""

    name: str
    low: int
    high: int

    def admits(self, raw: bytes) -> bool:
        """Whether the unit with identifier bytes ``raw`` falls in this experiment's range."""
        return self.low <= bin_of(raw, b":layer:", self.name) < self.high


@dataclass(frozen=True, slots=True)
class Holdout:
    """A named share of units (``weight`` thousandths of a percent) kept out of experiments."""

    name: str
    weight: int

    def holds(self, raw: bytes) -> bool:
        """Whether the unit with identifier bytes ``raw`` is held out."""
        return bin_of(raw, b":holdout:", self.name) < self.weight


def bin_of(raw: bytes, kind: bytes, name: str) -> int:
    """``(int(sha256_hex(identifier + kind + name)[:8], 16) * 100000) >> 32``."""
    head = sha256(raw + kind + name.encode("utf-8")).digest()[:4]
    return (int.from_bytes(head, "big") * BINS) >> 32


@dataclass(frozen=True, slots=True)
class SlV2:
    """The ``sl-v2`` part of an experiment: splits by site, and the optional gates."""

    splits: Mapping[str, SiteSplit]
    groups: tuple[str, ...]
    layer: Layer | None = None
    holdouts: tuple[Holdout, ...] = ()
    targeting: Mapping[str, Any] | None = None
    matcher: Callable[[Mapping[str, Any]], bool] = field(
        default=lambda attributes: True, init=False, repr=False, compare=False)
    """``targeting`` compiled once (:mod:`splitlab.core.condition_compiler`)."""

    def __post_init__(self) -> None:
        if self.targeting is not None:
            object.__setattr__(self, "matcher", compile_condition(self.targeting))

    @property
    def gated(self) -> bool:
        """Whether any gate (holdout, layer, targeting) can exclude a unit."""
        return bool(self.holdouts) or self.layer is not None or self.targeting is not None

    def split_for(self, site: str | None) -> SiteSplit | None:
        """The split in force on ``site`` (its own, else ``default``; ``None``: no units)."""
        if site is not None and site in self.splits:
            return self.splits[site]
        return self.splits.get(DEFAULT_SITE)

    def exclusion(self, raw: bytes, attributes: Mapping[str, Any] | None,
                  targeted: bool = True) -> Gate | None:
        """The first gate that keeps the unit (identifier bytes ``raw``) out, in the order
        holdout, layer, targeting; ``None`` when it passes them all. Missing attributes are
        ``null`` to the condition. With ``targeted`` false the targeting gate is skipped:
        the caller decides the condition elsewhere (the browser, for a client payload)."""
        for holdout in self.holdouts:
            if holdout.holds(raw):
                return "holdout"
        if self.layer is not None and not self.layer.admits(raw):
            return "layer"
        if targeted and self.targeting is not None and not self.matcher(attributes or {}):
            return "targeting"
        return None

    def totals(self) -> dict[str, float]:
        """Each split's rate (the sum of its percents / 100), for readers of ``sample_rate``."""
        return {site: split.rate for site, split in self.splits.items()}

    def to_wire(self) -> dict[str, Any]:
        """The row fields of this part (``traffic_split`` and the gates that are set)."""
        wire: dict[str, Any] = {"traffic_split": {
            site: {g: percent_of(w) for g, w in zip(self.groups, split.weights, strict=True)
                   if w > 0}
            for site, split in sorted(self.splits.items())}}
        if self.layer is not None:
            wire["layer"] = {"name": self.layer.name, "range": [self.layer.low, self.layer.high]}
        if self.holdouts:
            wire["holdouts"] = [{"name": h.name, "percent": percent_of(h.weight)}
                                for h in self.holdouts]
        if self.targeting is not None:
            wire["targeting"] = self.targeting
        return wire

    @classmethod
    def parse(cls, row: Mapping[str, Any], groups: tuple[str, ...]) -> SlV2:
        """Validate the ``sl-v2`` fields of ``row`` (whose groups are ``groups``)."""
        splits = _splits(row.get("traffic_split"), groups)
        targeting = row.get("targeting")
        if targeting is not None:
            check_condition(targeting)
        return cls(splits, groups, _layer(row.get("layer")), _holdouts(row.get("holdouts")),
                   targeting)


def _splits(value: object, groups: tuple[str, ...]) -> dict[str, SiteSplit]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError("traffic_split", "an sl-v2 row needs a non-empty object "
                                           "{site | 'default': {group: percent}}")
    splits: dict[str, SiteSplit] = {}
    for site, percents in value.items():
        where = f"traffic_split[{site!r}]"
        if not isinstance(site, str) or not site:
            raise ConfigError("traffic_split", f"site names must be non-empty strings: {site!r}")
        if not isinstance(percents, Mapping):
            raise ConfigError(where, f"must be an object {{group: percent}}, got {percents!r}")
        unknown = sorted(str(g) for g in percents if g not in groups)
        if unknown:
            raise ConfigError(where, f"names a group that is not in groups: {unknown[0]!r}")
        weights = [thousandths(percents[g], f"{where}[{g!r}]") if g in percents else 0
                   for g in groups]
        if sum(weights) > BINS:
            raise ConfigError(where, f"percents sum to {sum(weights) / 1000}, more than 100")
        splits[site] = SiteSplit.of(weights, where)
    return splits


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(where, f"must be a non-empty string, got {value!r}")
    return value


def _layer(value: object) -> Layer | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError("layer", f"must be an object {{name, range}}, got {value!r}")
    name = _name(value.get("name"), "layer.name")
    bounds = value.get("range")
    if (not isinstance(bounds, list) or len(bounds) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)):
        raise ConfigError("layer.range", f"must be [lo, hi], two integers, got {bounds!r}")
    low, high = bounds
    if not 0 <= low < high <= BINS:
        raise ConfigError("layer.range", f"must satisfy 0 <= lo < hi <= {BINS}, got {bounds!r}")
    return Layer(name, low, high)


def _holdouts(value: object) -> tuple[Holdout, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError("holdouts", f"must be a list of {{name, percent}}, got {value!r}")
    holdouts: list[Holdout] = []
    for index, item in enumerate(value):
        where = f"holdouts[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(where, f"must be an object {{name, percent}}, got {item!r}")
        name = _name(item.get("name"), f"{where}.name")
        if any(h.name == name for h in holdouts):
            raise ConfigError(f"{where}.name", f"duplicate holdout {name!r}")
        holdouts.append(Holdout(name, thousandths(item.get("percent"), f"{where}.percent")))
    return tuple(holdouts)
