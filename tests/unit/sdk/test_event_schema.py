"""SDK events against Wikimedia's published web base schema 1.3.0 (reference data).

1.3.0 is the newest version published as a file; it predates the singular ``experiment``
fragment (2.x), so that one key is set aside here, and ``meta.dt`` is filled in as the intake
does on receipt. Everything else the SDK writes must validate as it is.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from splitlab.sdk import Performer

from .sdk_helpers import make, row

fastjsonschema = pytest.importorskip("fastjsonschema")
yaml = pytest.importorskip("yaml")


def as_received(event: dict[str, Any]) -> dict[str, Any]:
    received = copy.deepcopy(event)
    received.pop("experiment")
    received["meta"]["dt"] = "2026-06-01T00:00:00.000Z"
    received["$schema"] = "/analytics/product_metrics/web/base/1.3.0"
    return received


def test_events_validate_against_web_base_1_3_0(refdata: Path) -> None:
    schema_file = refdata / "wikimedia-schemas/jsonschema/analytics/product_metrics/web/base"
    validate = fastjsonschema.compile(yaml.safe_load((schema_file / "1.3.0.yaml").read_text()))
    client, _, sender = make([row("schema-check-user", "mw-user"),
                              row("schema-check-anon", "edge-unique")], site="enwiki")
    manager = client.manager(anonymous_id="G" * 20)
    manager.update_user(12, performer=Performer(is_temp=False))
    for name in ("schema-check-user", "schema-check-anon"):
        handle = manager.get_experiment(name)
        manager.log_enrollment(name, "account_creation")
        handle.send_exposure()
        handle.send("click", {"action_source": "button", "action_subtype": "primary",
                              "action_context": "save"},
                    {"page": {"namespace_id": 0, "title": "Main_Page"}})
    assert len(sender.events) == 6
    for event in sender.events:
        validate(as_received(event))
    assert sender.events[0]["performer"]["id"] == 12
    assert "id" not in sender.events[3]["performer"]


def test_the_check_catches_a_bad_event(refdata: Path) -> None:
    schema_file = refdata / "wikimedia-schemas/jsonschema/analytics/product_metrics/web/base"
    validate = fastjsonschema.compile(yaml.safe_load((schema_file / "1.3.0.yaml").read_text()))
    client, _, sender = make([row("schema-check-user", "mw-user")])
    client.manager(user_id=1).get_experiment("schema-check-user").send("click")
    bad = as_received(sender.events[0])
    bad["agent"]["client_platform"] = "python"
    with pytest.raises(fastjsonschema.JsonSchemaException):
        validate(bad)
