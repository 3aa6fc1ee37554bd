"""The mpo override parser and the X-Experiment-Enrollments header."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from splitlab.core.headers import (
    EXPERIMENT_NAME,
    GROUP_NAME,
    format_enrollments_header,
    parse_enrollments_header,
    parse_overrides,
)
from splitlab.errors import HeaderError, OverrideError


def test_overrides_parse_pairs_and_skip_empty_entries() -> None:
    assert parse_overrides("exp:group;exp2:group2") == {"exp": "group", "exp2": "group2"}
    assert parse_overrides(" exp : b ;;") == {"exp": "b"}
    assert parse_overrides("") == {}
    assert parse_overrides("a:x;a:y") == {"a": "y"}


@pytest.mark.parametrize("bad", ["exp", "exp:", ":group", "a b:c", "exp:gr oup", "x:y:z"])
def test_a_malformed_override_is_refused_with_the_entry_named(bad: str) -> None:
    with pytest.raises(OverrideError, match="malformed override"):
        parse_overrides(f"good-one:b;{bad}")


def test_enrollment_header_round_trip() -> None:
    value = "sticky-header-2026=treatment;leveling-up.v2=notify_48h;"
    parsed = parse_enrollments_header(value)
    assert parsed == {"sticky-header-2026": "treatment", "leveling-up.v2": "notify_48h"}
    assert format_enrollments_header(parsed) == value
    assert parse_enrollments_header("") == {}
    assert parse_enrollments_header("exp-12345=a") == {"exp-12345": "a"}


@pytest.mark.parametrize(
    "bad",
    [
        "short=a;",  # name under 8 characters
        "-leading-dash=a;",
        "x" * 64 + "=a;",  # name over 63 characters
        "valid-name-1=;",
        "valid-name-1=-b;",
        "valid-name-1=" + "b" * 64 + ";",
        "valid-name-1;",
        "valid-name-1=a=b;",
        "valid name 1=a;",
        "valid-name-1=a;valid-name-1=b;",
    ],
)
def test_one_malformed_entry_invalidates_the_whole_header(bad: str) -> None:
    with pytest.raises(HeaderError):
        parse_enrollments_header("good-experiment=control;" + bad)


def test_the_serializer_refuses_names_the_parser_would_refuse() -> None:
    with pytest.raises(HeaderError):
        format_enrollments_header({"short": "a"})


names = st.from_regex(r"[A-Za-z0-9][-_.A-Za-z0-9]{7,62}", fullmatch=True)
groups = st.from_regex(r"[A-Za-z0-9][-_.A-Za-z0-9]{0,62}", fullmatch=True)


@given(st.dictionaries(names, groups, max_size=8))
def test_any_valid_enrollments_round_trip(enrollments: dict[str, str]) -> None:
    assert parse_enrollments_header(format_enrollments_header(enrollments)) == enrollments


@given(st.text(max_size=200))
def test_the_parser_either_refuses_or_returns_valid_names_that_round_trip(value: str) -> None:
    try:
        parsed = parse_enrollments_header(value)
    except HeaderError:
        return
    assert all(EXPERIMENT_NAME.fullmatch(n) and GROUP_NAME.fullmatch(g) for n, g in parsed.items())
    assert parse_enrollments_header(format_enrollments_header(parsed)) == parsed
