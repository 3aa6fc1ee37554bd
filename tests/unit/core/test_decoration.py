"""The enrollment result, the JS config var and body classes."""

from __future__ import annotations

import json

from splitlab.core.decoration import (
    EnrollmentResult,
    body_classes,
    class_token,
    json_for_script,
)


def test_result_records_assignments_and_overrides() -> None:
    result = EnrollmentResult()
    result.add_assignment("sticky-header", "treatment", "ab" * 32)
    result.add_override("dark-mode-test", "on")
    result.add_assignment("dark-mode-test", "off", "cd" * 32)  # the override wins
    assert result.to_js_config() == {
        "overrides": {"dark-mode-test": "on"},
        "enrolled": ["sticky-header", "dark-mode-test"],
        "assigned": {"sticky-header": "treatment", "dark-mode-test": "on"},
        "subject_ids": {"sticky-header": "ab" * 32},
    }


def test_an_override_after_an_assignment_replaces_it_and_drops_the_subject_id() -> None:
    result = EnrollmentResult()
    result.add_assignment("sticky-header", "control", "ab" * 32)
    result.add_override("sticky-header", "treatment")
    assert result.enrolled == ["sticky-header"]
    assert result.assigned == {"sticky-header": "treatment"}
    assert result.subject_ids == {}


def test_body_classes_follow_the_page_decoration_contract() -> None:
    result = EnrollmentResult()
    result.add_assignment("Sticky Header", "Treatment  B", "ab" * 32)
    assert body_classes(result) == [
        "xlab-experiment-sticky-header",
        "xlab-experiment-sticky-header-treatment-b",
    ]
    assert body_classes(result, prefix="site")[0] == "site-experiment-sticky-header"


def test_class_tokens_are_escaped_for_an_attribute() -> None:
    assert class_token('a"b<c>') == "a&quot;b&lt;c&gt;"


def test_json_for_script_cannot_close_the_script_element() -> None:
    text = json_for_script({"assigned": {"x": "</script><script>alert(1)</script>\u2028"}})
    assert "</script" not in text and "<" not in text and "\u2028" not in text
    assert json.loads(text) == {"assigned": {"x": "</script><script>alert(1)</script>\u2028"}}
