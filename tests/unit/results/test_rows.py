"""The columnar rows of the lake writer equal the per-event reference, field by field, on a sample
that varies every field the rows read: both fragments, wrong JSON types, times and numbers in and
out of their canonical forms, error events, bodies that are not objects."""

from __future__ import annotations

import math
from typing import Any

import orjson

from splitlab.intake.sinks import StoredEvent
from splitlab.results.rows import rows_of
from tests.unit.results import reference_rows

ERRORS = "eventgate.error.validation"
SUBJECT = "a" * 64
TIMES: list[Any] = [
    "2026-11-22T10:00:00Z", "2026-11-22T10:00:00.123Z", "2026-11-22T10:00:00.1234567Z",
    "2026-11-22T10:00:00+05:30", "2026-11-22T10:00:00-08:00", "2026-11-22T10:00:00",
    "2026-11-22T23:59:59.999999", "2026-11-22", "2026-11-22 10:00:00Z", "20261122T100000Z",
    "1969-12-31T23:59:59.5Z", "1970-01-01T00:00:00Z", "2026-02-30T10:00:00Z",
    "2026-11-22T24:00:00Z", "2026-11-22T10:00:60Z", "not a time", "", 1_700_000_000, None,
    "2026-11-22t10:00:00z", "0999-01-01T00:00:00Z", "2026-11-22T10:00:00+05:30:15",
]
CONTEXTS: list[Any] = [
    "12", "-3.5", " 7 ", "1e5", "1E-3", "1e400", ".5", "5.", "abc", "\u0663", "", "-", "1e", 12,
    None, "0012", "-0", "3.25\n", "1,5", "+4",
]
USERS: list[Any] = [42, 0, -7, 2**63 - 1, 2**63, 2**64 - 1, "42", True, 4.0, None, -(2**63)]


def event(number: int) -> StoredEvent:
    """The ``number``-th varied stored event."""
    body: dict[str, Any] = {"action": ["experiment_enrollment", "click", "experiment_exposure",
                                       7, None][number % 5]}
    time = TIMES[number % len(TIMES)]
    if time is not None:
        body["dt"] = time
    context = CONTEXTS[number % len(CONTEXTS)]
    if context is not None:
        body["action_context"] = context
    if number % 3:
        body["action_source"] = "page_view" if number % 3 == 1 else 3
    body["mediawiki"] = [{"database": "enwiki"}, {"database": 5}, "enwiki", {}][number % 4]
    user = USERS[number % len(USERS)]
    if user is not None:
        body["performer"] = {"id": user} if number % 7 else [user]
    shape = number % 6
    if shape in (0, 1):
        body["experiment"] = {"enrolled": "exp-one-2026",
                              "assigned": ["control", "b", 3][number % 3],
                              "subject_id": [SUBJECT, "not-hex-subject", 9][number % 3],
                              "sampling_unit": "mw-user", "exposure_version": "abc" if shape else 1}
    elif shape == 2:
        body["experiments"] = {"enrolled": ["exp-one-2026", "exp-two-2026", "", 5],
                               "assigned": {"exp-one-2026": "control", "exp-two-2026": 1}}
    elif shape == 3:
        body["experiments"] = {"enrolled": ["exp-three-2026"], "assigned": ["x"]}
        body["experiment"] = {"enrolled": 4}
    elif shape == 4:
        body["experiments"] = {"enrolled": "exp-one-2026"}
    dt = ["2026-11-22T10:00:00.000Z", "2026-11-22T10:00:01.5+01:00", "garbage"][number % 3]
    stream = ERRORS if number % 11 == 0 else "product_metrics.web_base"
    if stream == ERRORS:
        raw = [orjson.dumps({"experiment": {"enrolled": "exp-one-2026"}}).decode(),
               orjson.dumps({"experiments": {"enrolled": ["exp-two-2026", "exp-one-2026"]}}
                            ).decode(), "{not json", 5][number % 4]
        body["raw_event"] = raw
    encoded = orjson.dumps(body)
    if number % 37 == 0:
        encoded = [b"[1, 2]", b'"text"', b"{broken", b"null"][number // 37 % 4]
    return StoredEvent(f"id-{number}", stream, dt, encoded)


def same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return left == right or (math.isnan(left) and math.isnan(right))
    return bool(left == right)


def test_columnar_rows_equal_the_per_event_reference() -> None:
    events = [event(n) for n in range(3000)]
    expected = reference_rows.rows_of(events, ERRORS)
    got = rows_of(events, ERRORS)
    want = expected.table().to_pylist()
    have = got.table.to_pylist()
    assert got.table.schema == expected.table().schema
    assert len(have) == len(want)
    for index, (row, reference) in enumerate(zip(have, want, strict=True)):
        for name, value in reference.items():
            if name == "day" and value.index("-") < 4:  # glibc's %Y does not pad years < 1000;
                value = value.zfill(10)                  # the columnar day is ISO 8601
            assert same(row[name], value), (index, name, row[name], value)
    assert {n: (t.events, t.errors, t.last_enrollment_us) for n, t in got.tallies.items()} == {
        n: (t.events, t.errors, t.last_enrollment_us) for n, t in expected.tallies.items()}


def test_an_empty_batch_has_no_rows() -> None:
    rows = rows_of([], ERRORS)
    assert rows.table.num_rows == 0
    assert rows.tallies == {}
