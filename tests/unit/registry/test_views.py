"""Read formats: status and phases (the edge config: test_edge.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from splitlab.registry import views

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def test_status_and_next_boundary() -> None:
    rows = [{"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
            {"start": "2026-11-25T00:00:00Z", "end": None},
            {"start": None, "end": None},
            {"start": "2026-10-01T00:00:00Z", "end": "2026-11-22T00:00:00Z"}]
    assert [views.status(r, NOW) for r in rows] == ["running", "scheduled", "running", "ended"]
    assert views.next_boundary(rows, NOW) == datetime(2026, 11, 25, tzinfo=UTC)
    assert views.active(rows, NOW) == [rows[0], rows[2]]


def test_phases_keep_the_last_state_of_each_phase() -> None:
    history = [{"phase_index": 0, "groups": ["a", "b"], "start": "s0"},
               {"phase_index": 0, "groups": ["a", "b"], "start": "s0", "end": "e0"},
               {"phase_index": 1, "groups": ["a", "c"], "start": "s1"}]
    phases = views.phases(history)
    assert [(p["phase_index"], p["groups"], p["end"]) for p in phases] == [
        (0, ["a", "b"], "e0"), (1, ["a", "c"], None)]
