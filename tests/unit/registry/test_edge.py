"""The edge config's bucket ranges (stable, disjoint, sized to the rate) and its document.

The oracles are written here from the contract, not taken from the code: group ``i`` of ``n``
owns buckets from ``i * 100000 // n`` up to the next group's offset, and holds ``rate`` of them to
the nearest bucket; the document must validate against wmfuniq's published schema.
"""

from __future__ import annotations

import hashlib
import json
import math
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft4Validator

from splitlab.core.assignment import assign
from splitlab.core.model import Experiment
from splitlab.registry import edge
from splitlab.registry.sites import SiteCatalog

rates = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
group_counts = st.integers(min_value=1, max_value=40)


def buckets(ranges: list[list[int] | None]) -> list[set[int]]:
    return [set() if r is None else set(range(r[0], r[1] + 1)) for r in ranges]


def owned(n: int) -> list[range]:
    """Each group's share, from the contract."""
    return [range(i * 100_000 // n, (i + 1) * 100_000 // n) for i in range(n)]


@given(group_counts, rates)
def test_ranges_are_disjoint_inside_their_share_and_sized_to_the_rate(n: int, rate: float) -> None:
    ranges = edge.tk_v1_ranges(n, rate)
    for share, found, r in zip(owned(n), buckets(ranges), ranges, strict=True):
        assert found <= set(share)  # inside its own share: disjoint from every other group
        if r is not None:
            assert r[0] == share.start and 0 <= r[0] <= r[1] <= 99_999
        assert abs(len(found) - Fraction(rate) * len(share)) <= Fraction(1, 2)


@given(group_counts, rates, rates)
def test_raising_the_rate_grows_each_range_in_place(n: int, a: float, b: float) -> None:
    low, high = sorted((a, b))
    for before, after in zip(buckets(edge.tk_v1_ranges(n, low)),
                             buckets(edge.tk_v1_ranges(n, high)), strict=True):
        assert before <= after


@given(group_counts)
def test_rate_one_covers_every_bucket_once(n: int) -> None:
    sets = buckets(edge.tk_v1_ranges(n, 1.0))
    assert sum(len(s) for s in sets) == 100_000
    assert set().union(*sets) == set(range(100_000))


@given(st.lists(st.integers(min_value=0, max_value=100_000), min_size=1, max_size=12),
       st.integers(min_value=1, max_value=50))
def test_weighted_ranges_sized_to_the_percent_and_stable_when_traffic_rises(
        weights: list[int], factor: int) -> None:
    """What sl-v2 feeds: W_g = percent x 1000 buckets at offsets cut by the reduced shares.
    Multiplying every weight keeps the ratios, hence the offsets: ranges only grow."""
    total = sum(weights)
    if total == 0 or total * factor > 100_000:
        return
    divisor = math.gcd(*weights)
    shares = [w // divisor for w in weights]
    ranges = edge.bucket_ranges(edge.share_offsets(shares), weights)
    raised = edge.bucket_ranges(edge.share_offsets(shares), [w * factor for w in weights])
    sets, grown = buckets(ranges), buckets(raised)
    assert [len(s) for s in sets] == weights
    assert sum(len(s) for s in grown) == len(set().union(*grown))  # disjoint
    assert all(a <= b for a, b in zip(sets, grown, strict=True))


def test_sizes_that_would_overlap_are_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        edge.bucket_ranges([0, 50_000], [50_001, 10])
    with pytest.raises(ValueError, match="does not fit"):
        edge.bucket_ranges([0, 50_000], [10, 50_001])
    assert edge.bucket_ranges([0, 50_000], [50_000, 50_000]) == [[0, 49_999], [50_000, 99_999]]


@pytest.mark.parametrize(("groups", "rate"), [(["c", "t"], 0.1), (["a", "b", "c"], 0.5),
                                               (["only"], 1.0), (["a", "b", "c", "d"], 0.25)])
def test_ranges_follow_the_tk_v1_geometry(groups: list[str], rate: float) -> None:
    """An edge that took floor(h * 100000) of the tk-v1 hash as its bucket would enroll each
    unit as assign() does, except within a bucket of a range end (rounding)."""
    name = "bin-check-experiment"
    exp = Experiment.from_config({"name": name, "groups": groups, "sample_rate": rate,
                                  "user_identifier_type": "session"})
    ranges = dict(zip(groups, edge.tk_v1_ranges(len(groups), rate), strict=True))
    ends = {end for r in ranges.values() if r is not None for end in (r[0], r[1] + 1)}
    checked = 0
    for identifier in range(5000):
        h = int(hashlib.sha256(f"{identifier}{name}".encode()).hexdigest()[:6], 16) / 2**24
        bucket = int(h * 100_000)
        if any(abs(bucket - end) <= 1 for end in ends):
            continue
        at_edge = next((g for g, r in ranges.items() if r and r[0] <= bucket <= r[1]), None)
        result = assign(identifier, exp, None)
        assert at_edge == (result.group if result.in_sample else None)
        checked += 1
    assert checked > 4500


@pytest.mark.parametrize(("value", "up", "expected"), [
    ("2026-11-22T12:00:00Z", True, "2026-11-22T12:00:00Z"),
    ("2026-11-22T12:00:00.250000+00:00", True, "2026-11-22T12:00:01Z"),
    ("2026-11-22T12:00:00.999999Z", False, "2026-11-22T12:00:00Z"),
    ("2026-11-22T14:00:00+02:00", False, "2026-11-22T12:00:00Z"),
    (None, True, "1970-01-01T00:00:00Z"),
    (None, False, "9999-12-31T23:59:59Z"),
])
def test_times_are_whole_utc_seconds_inside_the_window(value: str | None, up: bool,
                                                       expected: str) -> None:
    assert edge.edge_time(value, "start", up=up) == expected


def row(name: str, unit: str, rate: object, groups: tuple[str, ...] = ("control", "test")
        ) -> dict[str, object]:
    return Experiment.from_config({
        "name": name, "groups": list(groups), "sample_rate": rate, "user_identifier_type": unit,
        "start": "2026-11-01T00:00:00.5Z", "end": "2026-12-01T00:00:00Z"}).to_config()


def test_document_lays_out_catalog_sites_and_validates(refdata: Path) -> None:
    schema = json.loads((refdata / "wikimedia-varnish-abtests-schema.json").read_text())
    catalog = SiteCatalog.build({"enwiki": None, "frwiktionary": None, "commonswiki": None,
                                 "kowiki": "KO.Wikipedia.ORG"})
    rows = [row("edge-default-and-sites", "edge-unique",
                {"default": 0.1, "0.5": ["enwiki"], "0": ["commonswiki"], "1": ["nowhere"]}),
            row("logged-in-only-exp", "mw-user", {"default": 1}),
            row("edge-sites-only-exp", "edge-unique", {"default": 0, "0.2": ["frwiktionary"]},
                ("a", "b", "c"))]
    document = edge.edge_document(rows, catalog)
    Draft4Validator(schema).validate(document)
    assert list(document) == ["_comment", "edge-default-and-sites", "edge-sites-only-exp"]
    first = document["edge-default-and-sites"]
    assert (first["start"], first["end"]) == ("2026-11-01T00:00:01Z", "2026-12-01T00:00:00Z")
    assert first["domains"] == {
        "en.wikipedia.org": {"groups": {"control": [0, 24_999], "test": [50_000, 74_999]}},
        "fr.wiktionary.org": {"groups": {"control": [0, 4_999], "test": [50_000, 54_999]}},
        "ko.wikipedia.org": {"groups": {"control": [0, 4_999], "test": [50_000, 54_999]}},
    }
    assert document["edge-sites-only-exp"]["domains"] == {"fr.wiktionary.org": {"groups": {
        "a": [0, 6_666], "b": [33_333, 39_999], "c": [66_666, 73_332]}}}
    assert "edge-default-and-sites: nowhere" in document["_comment"]


def test_document_is_empty_but_valid_without_edge_experiments(refdata: Path) -> None:
    schema = json.loads((refdata / "wikimedia-varnish-abtests-schema.json").read_text())
    document = edge.edge_document([row("logged-in-only-exp", "mw-user", 1),
                                   row("edge-rate-zero-exp", "edge-unique", 0)],
                                  SiteCatalog.builtin())
    Draft4Validator(schema).validate(document)
    assert list(document) == ["_comment"]


def test_comment_changes_with_the_content_only() -> None:
    catalog = SiteCatalog.builtin()
    one = edge.edge_document([row("edge-comment-exp", "edge-unique", 0.1)], catalog)
    same = edge.edge_document([row("edge-comment-exp", "edge-unique", 0.1),
                               row("logged-in-only-exp", "mw-user", 1)], catalog)
    other = edge.edge_document([row("edge-comment-exp", "edge-unique", 0.2)], catalog)
    assert one["_comment"] == same["_comment"] != other["_comment"]


def slv2_row(name: str, split: dict[str, dict[str, float]], groups: tuple[str, ...],
             **gates: object) -> dict[str, object]:
    return Experiment.from_config({
        "name": name, "groups": list(groups), "algorithm": "sl-v2", "traffic_split": split,
        "user_identifier_type": "edge-unique", "start": "2026-11-01T00:00:00Z",
        "end": "2026-12-01T00:00:00Z", **gates}).to_config()


def test_slv2_rows_get_weighted_ranges_at_their_share_offsets(refdata: Path) -> None:
    """Worked by hand from the contract: default 5 % / 15 % / 0 % reduces to shares 1:3:0
    (offsets 0 and 25000); enwiki 10/10/10 to 1:1:1 (0, 33333, 66666); dewiki 1.234 / 2.468
    to 1:2 (0, 33333). Each range holds percent x 1000 buckets; a 0 % group has none."""
    schema = json.loads((refdata / "wikimedia-varnish-abtests-schema.json").read_text())
    catalog = SiteCatalog.build({"enwiki": None, "dewiki": None, "frwiki": None})
    groups = ("control", "treatment", "extra")
    exp = slv2_row("edge-weighted-exp", {
        "default": {"control": 5, "treatment": 15, "extra": 0},
        "enwiki": {"control": 10, "treatment": 10, "extra": 10},
        "dewiki": {"control": 1.234, "treatment": 2.468}}, groups)
    document = edge.edge_document([exp], catalog)
    Draft4Validator(schema).validate(document)
    assert document["edge-weighted-exp"]["domains"] == {
        "de.wikipedia.org": {"groups": {"control": [0, 1_233], "treatment": [33_333, 35_800]}},
        "en.wikipedia.org": {"groups": {"control": [0, 9_999], "treatment": [33_333, 43_332],
                                        "extra": [66_666, 76_665]}},
        "fr.wikipedia.org": {"groups": {"control": [0, 4_999], "treatment": [25_000, 39_999]}},
    }
    assert "_comment" not in document["edge-weighted-exp"]


def test_slv2_gates_are_named_as_not_enforced_at_the_edge(refdata: Path) -> None:
    """The schema has no form for a layer, a holdout or a condition: the document stays valid
    and the experiment's _comment says what the edge leaves out."""
    schema = json.loads((refdata / "wikimedia-varnish-abtests-schema.json").read_text())
    exp = slv2_row("edge-layered-exp", {"enwiki": {"control": 20, "treatment": 20}},
                   ("control", "treatment"), layer={"name": "reading", "range": [0, 50_000]},
                   holdouts=[{"name": "global-2026", "percent": 2}],
                   targeting={"platform": "mobile"})
    document = edge.edge_document([exp], SiteCatalog.build({"enwiki": None}))
    Draft4Validator(schema).validate(document)
    entry = document["edge-layered-exp"]
    assert entry["domains"] == {"en.wikipedia.org": {"groups": {
        "control": [0, 19_999], "treatment": [50_000, 69_999]}}}
    assert entry["_comment"] == ("not enforced at the edge: layer reading [0, 50000), "
                                 "holdout global-2026, targeting")


def test_slv2_site_with_no_traffic_and_unknown_sites() -> None:
    exp = slv2_row("edge-zero-site-exp", {"default": {"a": 0, "b": 0},
                                          "enwiki": {"a": 1, "b": 0}}, ("a", "b"))
    document = edge.edge_document([exp], SiteCatalog.build({"enwiki": None, "dewiki": None}))
    assert document["edge-zero-site-exp"]["domains"] == {
        "en.wikipedia.org": {"groups": {"a": [0, 999]}}}


@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8),
       st.integers(min_value=1, max_value=50), st.integers(min_value=1, max_value=50))
def test_slv2_scaling_a_sites_percents_only_grows_ranges_in_place(
        shares: list[int], a: int, b: int) -> None:
    """Percents ``k * share / 1000`` for two factors k: each range holds exactly percent x 1000
    buckets, starts at its share's offset (cut by the reduced shares, group order) and the
    larger factor's ranges contain the smaller's."""
    low, high = sorted((a, b))
    if sum(shares) == 0 or sum(shares) * high > 100_000:
        return
    groups = tuple(f"g{i}" for i in range(len(shares)))
    divisor = math.gcd(*shares)
    reduced = [s // divisor for s in shares]
    offsets = [sum(reduced[:i]) * 100_000 // sum(reduced) for i in range(len(reduced))]
    catalog = SiteCatalog.build({"enwiki": None})
    found: list[dict[str, set[int]]] = []
    for factor in (low, high):
        split = {"enwiki": {g: s * factor / 1000 for g, s in zip(groups, shares, strict=True)}}
        document = edge.edge_document([slv2_row("edge-scaled-exp", split, groups)], catalog)
        ranges = document["edge-scaled-exp"]["domains"]["en.wikipedia.org"]["groups"]
        sets = {g: set(range(r[0], r[1] + 1)) for g, r in ranges.items()}
        for g, share, offset in zip(groups, shares, offsets, strict=True):
            assert len(sets.get(g, ())) == share * factor
            if share:
                assert ranges[g][0] == offset
        assert sum(map(len, sets.values())) == len(set().union(*sets.values()))
        found.append(sets)
    assert all(found[0][g] <= found[1][g] for g in found[0])
