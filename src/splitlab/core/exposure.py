"""The config digest ``exposure_version``, exactly as Test Kitchen's MediaWiki extension
computes it (DESIGN.md, config digest), so events from MediaWiki and from splitlab's SDKs carry
the same version for the same config.

Test Kitchen ignores a served ``exposure_version`` and computes its own from the row it fetched:
the first 16 hex digits of sha256 over PHP's ``json_encode`` (slashes and Unicode unescaped) of,
in this key order, ``name``, ``user_identifier_type``, ``groups`` in PHP ``sort()`` order,
``sample_rate`` as served (its keys in served order), ``stream_name``, ``schema_id`` (a missing
or null one being :data:`DEFAULT_SCHEMA`) and ``contextual_attributes`` (missing or null: ``[]``).
A missing ``groups`` or ``sample_rate`` counts as ``[]``. The checked vectors are
``tests/vectors/exposure-version.json``, produced by running Test Kitchen's PHP.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from splitlab.core.php import php_json, php_sort

DEFAULT_SCHEMA = "/analytics/product_metrics/web/base/2.1.0"
"""Test Kitchen's base schema id: the ``schema_id`` it assumes when a row has none."""


def _or(value: Any, default: Any) -> Any:
    """PHP's ``??``: the default for a missing or null value."""
    return default if value is None else value


def exposure_material(row: Mapping[str, Any]) -> str:
    """The exact text Test Kitchen hashes for ``row`` (a row as served, as JSON reads it)."""
    semantic = {
        "name": row.get("name"),
        "user_identifier_type": row.get("user_identifier_type"),
        "groups": php_sort(_or(row.get("groups"), [])),
        "sample_rate": _or(row.get("sample_rate"), []),
        "stream_name": row.get("stream_name"),
        "schema_id": _or(row.get("schema_id"), DEFAULT_SCHEMA),
        "contextual_attributes": _or(row.get("contextual_attributes"), []),
    }
    return php_json(semantic)


def exposure_version(row: Mapping[str, Any]) -> str:
    """Test Kitchen's ``exposure_version`` of a served row: 16 lower-case hex digits."""
    return hashlib.sha256(exposure_material(row).encode("utf-8")).hexdigest()[:16]
