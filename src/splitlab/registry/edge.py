"""The edge config (``?authority=varnish&format=config``): what Wikimedia's CDN installs.

The document is exactly the ``wmfuniq`` Varnish module's abtests contract: an object keyed by
experiment name; per running ``edge-unique`` experiment its ``start`` and ``end`` (UTC, whole
seconds, ``Z``) and its ``domains``, keyed by lower-case domain, each with ``groups``: one bucket
range ``[first, last]`` per group out of the edge's 100,000 buckets ``0..99999``. Both ends are
inclusive: the schema caps a bucket at 99999, so the range that holds the last bucket must end at
99999, and a range of ``size`` buckets is ``[offset, offset + size - 1]``. A group that holds no
bucket on a domain is left out, and so is a domain where no group holds one (the schema has no
form for an empty range).

Ranges are stable. Each group owns a fixed share of the buckets, in group order, and its range
starts at its share's offset and grows in place with the rate: raising a rate only adds buckets at
the end of each range, so no unit the edge enrolled ever moves, and ranges never overlap.
:func:`bucket_ranges` turns (offsets, sizes) into ranges for any algorithm: ``tk-v1`` sizes each
range as the rate times its share (:func:`rate_sizes`); ``sl-v2`` cuts the buckets by its site's
reduced shares (:func:`share_offsets`) and sizes each range percent × 1000 buckets
(:func:`split_ranges`), still one range per group.

What the schema has no form for is not enforced at the edge: an ``sl-v2`` row's layer, holdouts
and targeting. The edge enrolls by the traffic split alone (its own hash differs from the core's
anyway); the experiment's ``_comment`` says what it leaves out (:func:`not_at_edge`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, timedelta
from fractions import Fraction
from typing import Any

import orjson

from splitlab.core.model import SampleRate, parse_time
from splitlab.core.slv2 import ALGORITHM as SL_V2
from splitlab.core.slv2 import DEFAULT_SITE, SiteSplit, SlV2
from splitlab.registry.sites import SiteCatalog

BUCKETS = 100_000
"""The edge's buckets: ``0..BUCKETS - 1``."""

OPEN_START = "1970-01-01T00:00:00Z"
OPEN_END = "9999-12-31T23:59:59Z"
"""What the edge gets for a missing ``start`` or ``end`` (the schema needs both)."""

Range = list[int]


def share_offsets(shares: Sequence[int]) -> list[int]:
    """Where each share starts when ``BUCKETS`` are cut in group order in proportion to
    ``shares``: ``floor(BUCKETS * (shares before it) / (all shares))``. Equal shares put group
    ``i`` of ``n`` at ``floor(i * 100000 / n)``; a zero share starts where the next one does."""
    total = sum(shares)
    if total <= 0 or any(share < 0 for share in shares):
        raise ValueError(f"shares must be non-negative with a positive sum, got {list(shares)}")
    offsets: list[int] = []
    before = 0
    for share in shares:
        offsets.append(before * BUCKETS // total)
        before += share
    return offsets


def rate_sizes(offsets: Sequence[int], rate: float) -> list[int]:
    """``tk-v1``'s sizes: ``rate`` times each share's width (up to the next offset, the last up
    to ``BUCKETS``), to the nearest bucket (halves up, computed exactly). Rate 1 fills every
    share; the sizes never shrink as the rate rises."""
    exact = Fraction(rate)
    ends = [*offsets[1:], BUCKETS]
    half = Fraction(1, 2)
    return [int(exact * (end - start) + half) for start, end in zip(offsets, ends, strict=True)]


def bucket_ranges(offsets: Sequence[int], sizes: Sequence[int]) -> list[Range | None]:
    """Each group's inclusive range ``[offset, offset + size - 1]`` (``None`` for size 0).

    Raises :class:`ValueError` unless the offsets are non-decreasing within ``0..BUCKETS`` and
    every range stays short of the next offset (the last one within ``BUCKETS``): the caller's
    sizes would otherwise make ranges overlap.
    """
    if len(offsets) != len(sizes):
        raise ValueError("one size per offset")
    limits = [*offsets[1:], BUCKETS]
    ranges: list[Range | None] = []
    for offset, size, limit in zip(offsets, sizes, limits, strict=True):
        if not 0 <= offset <= limit or size < 0 or offset + size > limit:
            raise ValueError(f"a range of {size} at {offset} does not fit before {limit}")
        ranges.append([offset, offset + size - 1] if size else None)
    return ranges


def tk_v1_ranges(groups: int, rate: float) -> list[Range | None]:
    """The ranges of a ``tk-v1`` experiment with ``groups`` equal groups at ``rate``."""
    offsets = share_offsets([1] * groups)
    return bucket_ranges(offsets, rate_sizes(offsets, rate))


def edge_time(value: object, where: str, *, up: bool) -> str:
    """A row's time in whole UTC seconds with ``Z``: the start rounded up and the end down, so
    the edge's window never reaches outside the registry's."""
    moment = parse_time(value, where)
    if moment is None:
        return OPEN_START if up else OPEN_END
    whole = moment.astimezone(UTC).replace(microsecond=0, tzinfo=None)
    if up and whole != moment.astimezone(UTC).replace(tzinfo=None):
        whole += timedelta(seconds=1)
    return whole.isoformat(timespec="seconds") + "Z"


def split_ranges(split: SiteSplit | None, groups: int) -> list[Range | None]:
    """The ranges of an ``sl-v2`` site split: each group's range at its reduced share's offset
    (:func:`share_offsets`, group order), sized by its weight (percent × 1000 buckets). Raising
    every percent by one factor keeps the shares, hence the offsets: ranges only grow. A 0% group
    (and every group of a split with no traffic, or of ``None``) gets no range."""
    if split is None or not any(split.weights):
        return [None] * groups
    return bucket_ranges(share_offsets(split.shares), split.weights)


def site_ranges(row: Mapping[str, Any]) -> tuple[list[Range | None], dict[str, list[Range | None]]]:
    """Each group's range (group order) on the sites without their own entry, and on each site
    with one: ``tk-v1`` rows by ``sample_rate``, ``sl-v2`` rows by ``traffic_split``."""
    groups = tuple(row["groups"])
    if row.get("algorithm") == SL_V2:
        splits = SlV2.parse(row, groups).splits
        return (split_ranges(splits.get(DEFAULT_SITE), len(groups)),
                {site: split_ranges(split, len(groups)) for site, split in splits.items()
                 if site != DEFAULT_SITE})
    rate = SampleRate.parse(row["sample_rate"])
    return (tk_v1_ranges(len(groups), rate.default),
            {site: tk_v1_ranges(len(groups), site_rate)
             for site, site_rate in rate.by_site.items()})


def domain_entry(groups: Sequence[str], ranges: Sequence[Range | None]) -> dict[str, Any]:
    """A domain's entry ``{"groups": {group: range}}`` (empty when no group holds a bucket)."""
    held = {group: r for group, r in zip(groups, ranges, strict=True) if r is not None}
    return {"groups": held} if held else {}


def edge_domains(row: Mapping[str, Any], catalog: SiteCatalog) -> tuple[dict[str, Any], list[str]]:
    """``domains`` of one experiment — the catalog's sites at the ``default`` rate (or split),
    plus each site the row gives its own — and the sites the catalog does not know (left out)."""
    default_ranges, by_site = site_ranges(row)
    default = domain_entry(row["groups"], default_ranges)  # one object shared by its domains
    domains = {domain: default for site, domain in catalog.domains.items()
               if default and site not in by_site}
    unknown: list[str] = []
    for site, ranges in by_site.items():
        domain = catalog.domain(site)
        entry = domain_entry(row["groups"], ranges)
        if domain is None:
            unknown.append(site)
        elif entry:
            domains[domain] = entry
    return dict(sorted(domains.items())), sorted(unknown)


def not_at_edge(row: Mapping[str, Any]) -> str | None:
    """What of an ``sl-v2`` row the edge does not enforce (its schema has no form for a layer,
    a holdout or a condition), for the experiment's ``_comment``; ``None`` when nothing."""
    parts: list[str] = []
    layer = row.get("layer")
    if isinstance(layer, Mapping):
        low, high = layer["range"]
        parts.append(f"layer {layer['name']} [{low}, {high})")
    parts += [f"holdout {h['name']}" for h in row.get("holdouts") or ()]
    if row.get("targeting") is not None:
        parts.append("targeting")
    return f"not enforced at the edge: {', '.join(parts)}" if parts else None


def edge_document(rows: Iterable[Mapping[str, Any]], catalog: SiteCatalog) -> dict[str, Any]:
    """The edge config for ``rows`` (the experiments running now): their ``edge-unique`` ones,
    by name, with ``_comment`` carrying a digest of the content (the config version the edge
    installed) and naming any site left out for not being in the catalog."""
    experiments: dict[str, Any] = {}
    left_out: list[str] = []
    for row in sorted(rows, key=lambda r: str(r["name"])):
        if row.get("user_identifier_type") != "edge-unique":
            continue
        domains, unknown = edge_domains(row, catalog)
        left_out += [f"{row['name']}: {site}" for site in unknown]
        if domains:
            entry = {"start": edge_time(row.get("start"), "start", up=True),
                     "end": edge_time(row.get("end"), "end", up=False), "domains": domains}
            comment = not_at_edge(row)
            experiments[row["name"]] = entry if comment is None else {"_comment": comment, **entry}
    digest = hashlib.sha256(orjson.dumps(experiments)).hexdigest()[:16]  # built in sorted order
    comment = f"splitlab edge config {digest}"
    if left_out:
        comment += f"; sites left out, not in the site catalog: {', '.join(left_out)}"
    return {"_comment": comment, **experiments}

