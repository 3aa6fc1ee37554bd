"""Builders shared by the intake tests."""

from __future__ import annotations

from typing import Any

WEB_13 = "/analytics/product_metrics/web/base/1.3.0"
WEB_21 = "/analytics/product_metrics/web/base/2.1.0"


def web_event(stream: str = "product_metrics.web_base", **extra: Any) -> dict[str, Any]:
    """A minimal valid web base 2.1.0 event as a Test Kitchen client sends it (no meta.dt)."""
    event: dict[str, Any] = {
        "$schema": WEB_21,
        "action": "experiment_exposure",
        "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
        "meta": {"stream": stream, "domain": "en.wikipedia.org"},
        "dt": "2026-11-22T00:00:00.000Z",
        "experiment": {"enrolled": "sticky-header-2026", "assigned": "treatment",
                       "subject_id": "a" * 64, "sampling_unit": "edge-unique",
                       "coordinator": "default", "phase_index": 0},
    }
    event.update(extra)
    return event
