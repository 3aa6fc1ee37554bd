"""The experiment form's mapping: stored row → form values → row, and errors → fields.

Stored rows are made by the registry's own normalization, so the round trip is checked against
what the form is really opened with; the ``tk-v1`` → ``sl-v2`` conversion is checked against
assignment itself (no unit moves).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from splitlab.core.assignment import assign
from splitlab.core.model import Experiment
from splitlab.errors import ConfigError, ConflictError
from splitlab.registry.rules import normalize_experiment
from splitlab.service.ui import forms

NOW = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC)
FORM_KEYS = ("name", "groups", "sample_rate", "user_identifier_type", "start", "end",
             "stream_name", "schema_id", "contextual_attributes", "algorithm", "traffic_split",
             "layer", "holdouts", "targeting")
TK_V1 = {"name": "plain-form-exp", "groups": ["control", "treatment", "extra"],
         "sample_rate": {"default": 0.3, "0.06": ["dewiki", "frwiki"]},
         "user_identifier_type": "edge-unique", "contextual_attributes": ["page_namespace"]}
SL_V2 = {"name": "weighted-form-exp", "groups": ["control", "treatment"], "algorithm": "sl-v2",
         "traffic_split": {"default": {"control": 30, "treatment": 10},
                           "dewiki": {"control": 12.5, "treatment": 37.5},
                           "enwiki": {"treatment": 0.125}},
         "layer": {"name": "reading", "range": [25000, 50000]},
         "holdouts": [{"name": "global-2026", "percent": 2.5}, {"name": "editors", "percent": 1}],
         "targeting": {"$or": [{"platform": "mobile"}, {"edit_count": {"$gte": 10}}],
                       "skin": {"$in": ["vector-2022", "minerva"]}},
         "user_identifier_type": "mw-user", "end": "2027-01-01T00:00:00Z"}


def stored(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as the registry stores it (its start: the moment of saving, with seconds)."""
    return normalize_experiment(row, 1, NOW)


def form_part(row: dict[str, Any]) -> dict[str, Any]:
    """The fields of a stored row that the form edits (an sl-v2 row's sample_rate is derived)."""
    keys = [k for k in FORM_KEYS if not (k == "sample_rate" and "traffic_split" in row)]
    return {k: row[k] for k in keys if k in row}


@pytest.mark.parametrize("row", [TK_V1, SL_V2, {**SL_V2, "layer": None, "holdouts": None,
                                                "targeting": None}],
                         ids=["tk-v1", "sl-v2", "sl-v2-no-gates"])
def test_values_of_a_stored_row_give_the_same_row_back(row: dict[str, Any]) -> None:
    saved = stored(row)
    assert forms.row_of(forms.values_of(saved)) == form_part(saved)
    assert stored(forms.row_of(forms.values_of(saved))) == saved


def test_an_sl_v2_row_shows_its_split_layer_holdouts_and_targeting() -> None:
    values = forms.values_of(stored(SL_V2))
    assert values["algorithm"] == "sl-v2"
    table = [(r.site, r.cells, r.total) for r in forms.FormState(values).split_rows]
    assert table == [("default", ("30", "10"), "40"), ("dewiki", ("12.5", "37.5"), "50"),
                     ("enwiki", ("", "0.125"), "0.125")]
    assert (values["layer_name"], values["layer_lo"], values["layer_hi"]) == (
        "reading", "25000", "50000")
    assert values["holdouts"] == "global-2026:2.5, editors:1"
    assert '"$gte": 10' in values["targeting"] and "\n" in values["targeting"]
    assert values["start"] == "2026-11-22T12:00:30"


def test_a_tk_v1_row_offers_its_equal_split_which_moves_no_unit() -> None:
    saved = stored(TK_V1)
    values = {**forms.values_of(saved), "algorithm": "sl-v2"}
    assert [(r.site, r.cells) for r in forms.FormState(values).split_rows] == [
        ("default", ("10", "10", "10")), ("dewiki", ("2", "2", "2")), ("frwiki", ("2", "2", "2"))]
    before, after = Experiment.from_config(saved), Experiment.from_config(stored(
        forms.row_of(values)))
    assert after.algorithm == "sl-v2" and after.sample_rate == before.sample_rate
    for n in range(2000):
        for site in (None, "dewiki", "enwiki"):
            assert assign(f"u{n}", after, site) == assign(f"u{n}", before, site)


def test_an_unequal_rate_leaves_the_cells_empty() -> None:
    values = forms.values_of(stored({**TK_V1, "sample_rate": {"default": 0.1}}))
    assert forms.FormState(values).split_rows[0].cells == ("", "", "")  # 3.333...%


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"targeting": '{"platform": "mobile"'}, "targeting",
     "is not valid JSON: Expecting ',' delimiter (line 1, column 22)"),
    ({"targeting": "[1]"}, "targeting", "must be a JSON object"),
    ({"targeting": '{"platform": {"$eq": "x", "$like": "y"}}'}, "targeting",
     "platform.$like is not an operator of the condition language"),
    ({"pct-1-0": "lots"}, "traffic_split", "dewiki, control: 'lots' is not a number"),
    ({"site-1": ""}, "traffic_split", "(a row without a site): has percents but no site name"),
    ({"layer_bins": "1000"}, "layer", "give a range (from, to) or a number of bins, not both"),
    ({"layer_hi": ""}, "layer", "give the first bin and the bin after the last"),
    ({"holdouts": "global-2026:x"}, "holdouts", "global-2026: percent 'x' is not a number"),
    ({"algorithm": "sl-v3"}, "algorithm", "must be one of tk-v1, sl-v2"),
])
def test_fields_that_cannot_be_read_are_refused_next_to_their_field(
        change: dict[str, str], field: str, message: str) -> None:
    values = {**forms.values_of(stored(SL_V2)), **change}
    with pytest.raises(ConfigError) as caught:
        forms.row_of(values)
    state = forms.failed(values, caught.value)
    assert list(state.errors) == [field] and message in state.errors[field], state.errors
    assert state.problem == ""


@pytest.mark.parametrize(("change", "field", "message", "sites"), [
    ({"pct-1-1": "90"}, "traffic_split", "dewiki: percents sum to 102.5, more than 100",
     {"dewiki"}),
    ({"pct-2-1": "0.0001"}, "traffic_split", "enwiki, treatment: has more than 3 decimals",
     {"enwiki"}),
    ({"pct-0-0": "0.001", "pct-0-1": "99.998"}, "traffic_split",
     "default: ratios must reduce to at most 10000 shares", {"default"}),
    ({"site-2": "dewiki"}, "traffic_split", "dewiki: is listed twice", {"dewiki"}),
    ({"layer_lo": "50000"}, "layer", "range must satisfy 0 <= lo < hi <= 100000", set()),
    ({"layer_name": ""}, "layer", "name must be a non-empty string", set()),
    ({"layer_lo": "", "layer_hi": "", "layer_bins": "5000"}, "layer", "range must be [lo, hi]",
     set()),
    ({"holdouts": "global-2026:2.5, editors"}, "holdouts",
     "editors: percent must be a percent", set()),
    ({"holdouts": "global-2026:2.5, global-2026:1"}, "holdouts",
     "global-2026: duplicate holdout", set()),
])
def test_registry_errors_are_shown_next_to_their_field(
        change: dict[str, str], field: str, message: str, sites: set[str]) -> None:
    values = {**forms.values_of(stored(SL_V2)), **change}
    with pytest.raises(ConfigError) as caught:
        stored(forms.row_of(values))
    state = forms.failed(values, caught.value)
    assert list(state.errors) == [field] and message in state.errors[field], state.errors
    assert state.invalid_sites == sites
    assert {r.site for r in state.split_rows if r.invalid} == sites


@pytest.mark.parametrize(("message", "field", "sites"), [
    ("experiment 'x' has started; the group ratios on site 'dewiki' cannot change within a "
     "phase", "traffic_split", {"dewiki"}),
    ("experiment 'x' has started; its traffic on sites without their own entry cannot stop",
     "traffic_split", {"default"}),
    ("experiment 'x' has started; its range of layer 'reading' can only grow", "layer", set()),
    ("experiment 'x' has started; groups cannot change within a phase", "", set()),
])
def test_traffic_guard_refusals_go_to_the_split_or_the_layer(
        message: str, field: str, sites: set[str]) -> None:
    state = forms.refused_traffic({}, ConflictError(message))
    if not field:
        assert state is None
        return
    assert state is not None and state.errors == {field: f"Not saved: {message}"}
    assert state.invalid_sites == sites and "would move units" in state.problem


def test_table_buttons_add_and_remove_rows_and_renumber() -> None:
    values = forms.values_of(stored(SL_V2))
    added = forms.table_edit(values, "add-site")
    assert [r.site for r in added.split_rows] == ["default", "dewiki", "enwiki", ""]
    assert added.focus == "site-3"
    removed = forms.table_edit(added.values, "remove-1")
    assert [(r.index, r.site, r.cells) for r in removed.split_rows] == [
        (0, "default", ("30", "10")), (1, "enwiki", ("", "0.125")), (2, "", ("", ""))]
    assert forms.row_of(removed.values)["traffic_split"] == {
        "default": {"control": 30, "treatment": 10}, "enwiki": {"treatment": 0.125}}
    assert forms.table_edit(values, "remove-0").values == values  # default stays
    wider = forms.table_edit({**values, "groups": "control, treatment, extra"}, "refresh")
    assert wider.split_rows[0].cells == ("30", "10", "")


def test_saving_as_tk_v1_clears_the_sl_v2_fields() -> None:
    current = stored(SL_V2)
    row = forms.row_of({**forms.values_of(current), "algorithm": "tk-v1"})
    patch = forms.patch_of(current, row)
    assert {k: patch[k] for k in ("algorithm", "traffic_split", "layer", "holdouts",
                                  "targeting")} == {
        "algorithm": "tk-v1", "traffic_split": None, "layer": None, "holdouts": None,
        "targeting": None}
    merged = stored({**current, **patch})
    assert "algorithm" not in merged and "traffic_split" not in merged
    assert forms.patch_of(current, forms.row_of(forms.values_of(current))) == form_part(current)
