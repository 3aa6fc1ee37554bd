"""Read formats: the edge's bin ranges agree with tk-v1 assignment; status and phases."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from splitlab.core.assignment import assign
from splitlab.core.model import Experiment
from splitlab.registry import views

NOW = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.mark.parametrize(("groups", "rate"), [(["c", "t"], 0.1), (["a", "b", "c"], 0.5),
                                               (["only"], 1.0), (["a", "b", "c", "d"], 0.0)])
def test_bins_agree_with_assignment(groups: list[str], rate: float) -> None:
    """An edge that buckets floor(h * 100000) into the published ranges puts each unit where
    assign() does, except possibly within one bin of a range edge (rounding)."""
    name = "bin-check-experiment"
    exp = Experiment.from_config({"name": name, "groups": groups, "sample_rate": rate,
                                  "user_identifier_type": "session"})
    ranges = views.bin_ranges(groups, rate)
    edges = {edge for pair in ranges.values() for edge in pair}
    checked = 0
    for identifier in range(5000):
        h = int(hashlib.sha256(f"{identifier}{name}".encode()).hexdigest()[:6], 16) / 2**24
        bucket = int(h * views.BINS)
        if any(abs(bucket - edge) <= 1 for edge in edges):
            continue
        edge_group = next((g for g, (lo, hi) in ranges.items() if lo <= bucket < hi), None)
        result = assign(identifier, exp, None)
        assert edge_group == (result.group if result.in_sample else None)
        checked += 1
    assert checked > 4500


def test_varnish_row_lays_out_sites() -> None:
    row = Experiment.from_config({"name": "site-layout-exp", "groups": ["c", "t"],
                                  "sample_rate": {"default": 0.2, "1": ["enwiki"]},
                                  "user_identifier_type": "edge-unique"}).to_config()
    edge = views.varnish_row(row)
    assert edge["bins"] == {"default": {"c": [0, 10000], "t": [50000, 60000]},
                            "enwiki": {"c": [0, 50000], "t": [50000, 100000]}}


def test_status_and_next_boundary() -> None:
    rows = [{"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
            {"start": "2026-11-25T00:00:00Z", "end": None},
            {"start": None, "end": None},
            {"start": "2026-10-01T00:00:00Z", "end": "2026-11-21T23:59:59Z"}]
    assert [views.status(r, NOW) for r in rows] == ["running", "scheduled", "running", "ended"]
    assert views.next_boundary(rows, NOW) == datetime(2026, 11, 25, tzinfo=UTC)
    assert views.active(rows, NOW) == [rows[0], rows[2]]


def test_an_experiment_runs_through_its_end_as_test_kitchen_keeps_it() -> None:
    ending = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-22T00:00:00Z"}
    assert views.status(ending, NOW) == "running"
    assert views.active([ending], NOW) == [ending]
    after = NOW + timedelta(microseconds=1)
    assert views.next_boundary([ending], NOW) == after
    assert views.status(ending, after) == "ended"


def test_phases_keep_the_last_state_of_each_phase() -> None:
    history = [{"phase_index": 0, "groups": ["a", "b"], "start": "s0"},
               {"phase_index": 0, "groups": ["a", "b"], "start": "s0", "end": "e0"},
               {"phase_index": 1, "groups": ["a", "c"], "start": "s1"}]
    phases = views.phases(history)
    assert [(p["phase_index"], p["groups"], p["end"]) for p in phases] == [
        (0, ["a", "b"], "e0"), (1, ["a", "c"], None)]
