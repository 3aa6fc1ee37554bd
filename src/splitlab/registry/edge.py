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
range as the rate times its share (:func:`rate_sizes`); ``sl-v2`` feeds its weights as shares
(:func:`share_offsets`) and sizes each range percent × 1000 buckets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, timedelta
from fractions import Fraction
from typing import Any

import orjson

from splitlab.core.model import SampleRate, parse_time
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


def edge_domains(row: Mapping[str, Any], catalog: SiteCatalog) -> tuple[dict[str, Any], list[str]]:
    """``domains`` of one experiment — the catalog's sites at the ``default`` rate, plus each
    site the row gives its own rate — and the sites the catalog does not know (left out)."""
    rate = SampleRate.parse(row["sample_rate"])
    groups: Sequence[str] = row["groups"]
    entries: dict[float, dict[str, Any]] = {}

    def entry(site_rate: float) -> dict[str, Any]:
        """The domain entry at ``site_rate`` (one shared object per rate; empty: no bucket)."""
        if site_rate not in entries:
            pairs = zip(groups, tk_v1_ranges(len(groups), site_rate), strict=True)
            ranges = {group: r for group, r in pairs if r is not None}
            entries[site_rate] = {"groups": ranges} if ranges else {}
        return entries[site_rate]

    default = entry(rate.default)
    domains = {domain: default for site, domain in catalog.domains.items()
               if default and site not in rate.by_site}
    unknown: list[str] = []
    for site, site_rate in rate.by_site.items():
        domain = catalog.domain(site)
        if domain is None:
            unknown.append(site)
        elif entry(site_rate):
            domains[domain] = entry(site_rate)
    return dict(sorted(domains.items())), sorted(unknown)


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
            experiments[row["name"]] = {"start": edge_time(row.get("start"), "start", up=True),
                                        "end": edge_time(row.get("end"), "end", up=False),
                                        "domains": domains}
    digest = hashlib.sha256(orjson.dumps(experiments)).hexdigest()[:16]  # built in sorted order
    comment = f"splitlab edge config {digest}"
    if left_out:
        comment += f"; sites left out, not in the site catalog: {', '.join(left_out)}"
    return {"_comment": comment, **experiments}

