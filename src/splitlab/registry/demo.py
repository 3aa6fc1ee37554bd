"""A few realistic experiments, an instrument, a layer and a holdout, seeded by
``splitlab serve --demo``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from splitlab.core.model import format_time
from splitlab.errors import ConflictError
from splitlab.registry.store import Registry

DEMO_ACTOR = "splitlab-demo"


def demo_rows(registry: Registry) -> list[tuple[str, dict[str, Any]]]:
    """(kind, row) pairs dated around the registry's "now": two running experiments, one
    scheduled (``sl-v2``, in half of a layer, with a holdout), in creation order."""
    now = registry.clock().replace(minute=0, second=0, microsecond=0)

    def at(days: int) -> str | None:
        return format_time(now + timedelta(days=days))

    base = {"stream_name": "product_metrics.web_base",
            "schema_id": "/analytics/product_metrics/web/base/2.1.0"}
    return [
        ("layer", {"name": "reading-surfaces",
                   "description": "Experiments on article reading; each gets its own bins"}),
        ("holdout", {"name": "global-holdout-2026", "percent": 2,
                     "description": "Kept out of this year's experiments: the long-term control"}),
        ("experiment", {**base, "name": "sticky-header-2026", "groups": ["control", "treatment"],
                        "sample_rate": {"default": 0.1, "0.5": ["enwiki", "dewiki"]},
                        "user_identifier_type": "edge-unique", "start": at(-7), "end": at(60),
                        "contextual_attributes": ["page_namespace", "performer_is_logged_in"]}),
        ("experiment", {**base, "name": "leveling-up-notifications",
                        "groups": ["control", "notify-48h", "notify-7d"],
                        "sample_rate": {"default": 1}, "user_identifier_type": "mw-user",
                        "start": at(-30), "end": at(30),
                        "contextual_attributes": ["performer_edit_count_bucket"]}),
        ("experiment", {**base, "name": "reading-list-onboarding",
                        "groups": ["control", "tooltip", "modal"], "algorithm": "sl-v2",
                        "traffic_split": {"default": {"control": 2, "tooltip": 2, "modal": 2}},
                        "layer": {"name": "reading-surfaces", "bins": 50000},
                        "holdouts": [{"name": "global-holdout-2026"}],
                        "user_identifier_type": "session", "start": at(7), "end": at(37)}),
        ("instrument", {**base, "name": "link-click-instrument", "sample_rate": {"default": 0.01},
                        "start": at(-90), "contextual_attributes": ["page_namespace"]}),
    ]


def seed_demo(registry: Registry) -> int:
    """Create the demo rows that do not exist yet; return how many were created."""
    created = 0
    for kind, row in demo_rows(registry):
        try:
            registry.create(kind, row, DEMO_ACTOR)
        except ConflictError:  # seeded before, or by another worker starting at the same time
            continue
        created += 1
    return created
