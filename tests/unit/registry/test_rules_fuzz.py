"""Any JSON value given as a row is either refused with a ConfigError naming a field, or
becomes a row that validates again unchanged (normalization is idempotent)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from splitlab.errors import ConfigError
from splitlab.registry import rules

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12,
)
times = st.sampled_from([None, "2026-11-01T00:00:00Z", "2026-12-01T10:00:00+02:00", "soon"])
plausible = st.fixed_dictionaries(
    {"name": st.sampled_from(["valid-experiment", "valid.experiment_2", "bad name", "x"]),
     "groups": st.lists(st.sampled_from(["control", "treatment", "t2", "", "b c"]),
                        min_size=1, max_size=3, unique=True),
     "sample_rate": st.one_of(st.floats(-0.5, 1.5), st.just({"default": 0.5, "1": ["enwiki"]}),
                              json_values),
     "user_identifier_type": st.sampled_from(["mw-user", "session", "nope"])},
    optional={"start": times, "end": times, "stream_name": st.one_of(st.text(), json_values),
              "contextual_attributes": st.lists(st.text(max_size=5), max_size=2),
              "phase_index": st.integers(-1, 3), "version": json_values, "colour": json_values},
)
EXPERIMENT_ONLY = ("groups", "user_identifier_type", "phase_index")
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, plausible))
def test_normalize_refuses_cleanly_or_is_idempotent(row: Any) -> None:
    for kind in ("experiment", "instrument"):
        if kind == "instrument" and isinstance(row, dict):
            row = {k: v for k, v in row.items() if k not in EXPERIMENT_ONLY}
        try:
            stored = rules.normalize(kind, row, version=1, now=NOW)
        except ConfigError as error:
            assert isinstance(error.field, str) and str(error)
            continue
        assert rules.normalize(kind, stored, version=1, now=NOW) == stored
        for field in ("start", "end", "stream_name", "schema_id"):
            assert isinstance(stored[field], str) and stored[field], field
