"""EventGate's formats (splitlab.intake.formats) and AJV-shaped violations
(splitlab.intake.violations)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitlab.intake.formats import is_uri, is_uri_reference, normalize_date_time, replace_at
from splitlab.intake.violations import data_path, errors_text, pointer, required

moments = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30))
offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timedelta(minutes=m))


def offset_forms(offset: timedelta) -> list[str]:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    forms = [f"{sign}{hours:02d}{rest:02d}", f"{sign}{hours:02d}:{rest:02d}"]
    if rest == 0:
        forms.append(f"{sign}{hours:02d}")
    if minutes == 0:
        forms += ["Z", "z"]
    return forms


@given(moment=moments, offset=offsets, separator=st.sampled_from(["T", "t", " ", "\t"]),
       fraction=st.sampled_from(["", ".5", ".123456789"]))
@settings(max_examples=400)
def test_every_ajv_form_is_the_same_instant_in_utc(
        moment: datetime, offset: timedelta, separator: str, fraction: str) -> None:
    local = moment.replace(microsecond=0)
    expected = local.replace(tzinfo=timezone(offset)).astimezone(UTC)  # the oracle: datetime
    for form in offset_forms(offset):
        text = local.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + fraction + form
        assert normalize_date_time(text) == expected.strftime("%Y-%m-%dT%H:%M:%S") + (
            fraction + "Z"), text


@pytest.mark.parametrize("text", [
    "2025-02-29 12:00:00Z", "2025-04-31T00:00:00Z", "2025-00-10T00:00:00Z",
    "2025-05-01T24:00:00Z", "2025-05-01T23:60:00Z", "2025-05-01T12:00:00+24",
    "2025-05-01T12:00:00+0060", "2025-05-01T23:59:60+01", "2025-05-01T22:59:60Z",
    "9999-12-31T23:00:00-02", "0000-01-01T00:00:00Z", "2025-05-01T12:00:00",
    "2025-05-01\u200b12:00:00Z", "2025-05-01T12:00:00+02:0", "2025-05-01T12:00:00Z\n",
])
def test_moments_that_do_not_exist_or_forms_ajv_refuses_are_none(text: str) -> None:
    assert normalize_date_time(text) is None


def test_a_leap_second_is_kept_only_at_the_end_of_a_utc_day() -> None:
    assert normalize_date_time("2016-12-31 23:59:60.5+00") == "2016-12-31T23:59:60.5Z"
    assert normalize_date_time("2016-12-31\u00a023:59:60Z") == "2016-12-31T23:59:60Z"


@pytest.mark.parametrize("value, reference, uri", [
    ("https://en.wikipedia.org/w/index.php?title=A|B&x[]=1", True, True),
    ("https://x.org/{a}^`<>\"", True, True),
    ("/wiki/Main_Page", True, False), ("//host/x", True, False), ("#frag", True, False),
    ("", True, False), ("mailto:a@b", True, True), ("urn:isbn:1", True, True),
    ("https://x.org/a b", False, False), ("\\share", False, False), ("a#b\\c", False, False),
    ("a#b#c", True, False), ("https://x\u3000y", False, False), ("1http://x", True, False),
    ("ſhttps://x", True, False),  # no Unicode case folding, as in JavaScript without /u
])
def test_uri_forms_follow_ajvs_fast_patterns(value: str, reference: bool, uri: bool) -> None:
    assert is_uri_reference(value) is reference
    assert is_uri(value) is uri


def test_replace_at_copies_only_the_path() -> None:
    shared = {"y": 1}
    value = {"a": {"b": [0, "old"]}, "s": shared}
    new = replace_at(value, ["a", "b", 1], "new")
    assert new == {"a": {"b": [0, "new"]}, "s": shared} and new["s"] is shared
    assert value["a"]["b"][1] == "old"


@pytest.mark.parametrize("path, dotted, json_pointer", [
    ([], "", ""),
    (["meta", "stream"], ".meta.stream", "/meta/stream"),
    (["http", "request_headers", "user-agent"], ".http.request_headers['user-agent']",
     "/http/request_headers/user-agent"),
    (["$schema"], ".$schema", "/$schema"),
    (["a", 0, "b"], ".a[0].b", "/a/0/b"),
    (["it's", "x/y~z", "1a"], "['it\\'s']['x/y~z']['1a']", "/it's/x~1y~0z/1a"),
])
def test_paths_are_written_as_ajv_writes_them(path: list[str | int], dotted: str,
                                              json_pointer: str) -> None:
    assert data_path(path) == dotted
    assert pointer(path) == json_pointer


def test_errors_text_is_eventgates_join() -> None:
    found = [required([], "meta"), required(["meta"], "stream")]
    assert errors_text(found) == ("'' should have required property 'meta', "
                                  "'.meta' should have required property 'stream'")
