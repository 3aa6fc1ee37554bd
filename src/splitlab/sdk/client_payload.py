"""The client payload: what the browser needs to know about one unit, and nothing more.

For one unit (its identifiers by sampling unit) the payload lists only the experiments that run
on the client and in which the unit is enrolled, each with its group, subject id,
``exposure_version`` and the stream and schema its events go to::

    {"v": 1, "iat": 1795000000, "exp": 1795086400,
     "experiments": {"sticky-header": {"group": "treatment", "subject_id": "9f2c...",
                                       "exposure_version": "1a2b3c4d5e6f7a8b",
                                       "sampling_unit": "edge-unique",
                                       "stream_name": "product_metrics.web_base",
                                       "schema_id": "/analytics/product_metrics/web/base/2.1.0"}}}

With ``hash_names`` the keys of ``experiments`` are :func:`name_key` of each name and the payload
carries the ``salt``; the browser SDK hashes the names the page asks for the same way. Hashing
hides the names of experiments from someone reading the page source who does not already know
them; it is not secrecy (a dictionary of candidate names breaks it).

Experiments out of sample are left out: the browser treats an absent experiment as "not enrolled".
The canonical bytes (:func:`payload_bytes`) are what gets signed (see :mod:`splitlab.sdk.signing`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from splitlab.core.assignment import Identifier, assign
from splitlab.core.exposure import DEFAULT_SCHEMA
from splitlab.core.model import DEFAULT_STREAM, Experiment, canonical_json

PAYLOAD_VERSION = 1
NAME_KEY_LENGTH = 16


def name_key(name: str, salt: str) -> str:
    """The hashed form of an experiment name: the first 16 hex of ``sha256(salt + name)``."""
    return hashlib.sha256((salt + name).encode("utf-8")).hexdigest()[:NAME_KEY_LENGTH]


@dataclass(frozen=True, slots=True)
class PayloadOptions:
    """How a payload is built.

    ``client_experiments`` names the experiments that run on the client (``None``: every active
    experiment does). ``ttl_seconds`` bounds how long the browser accepts the payload (``exp``).
    ``salt`` (non-empty) turns on hashed names.
    """

    client_experiments: Collection[str] | None = None
    ttl_seconds: int = 86_400
    salt: str = ""
    site: str | None = None


def client_experiments(
    experiments: Iterable[Experiment], now: datetime, options: PayloadOptions
) -> list[Experiment]:
    """The experiments active at ``now`` that run on the client, in their given order."""
    chosen = options.client_experiments
    return [
        e for e in experiments if e.is_active(now) and (chosen is None or e.name in chosen)
    ]


def experiment_entry(experiment: Experiment, group: str, subject: str) -> dict[str, str]:
    """What the browser needs about one enrollment (stream and schema default to the web base)."""
    return {
        "group": group,
        "subject_id": subject,
        "exposure_version": experiment.exposure_version,
        "sampling_unit": experiment.user_identifier_type,
        "stream_name": experiment.stream_name or DEFAULT_STREAM,
        "schema_id": experiment.schema_id or DEFAULT_SCHEMA,
    }


def build_payload(
    experiments: Iterable[Experiment],
    identifiers: Mapping[str, Identifier],
    now: datetime,
    options: PayloadOptions | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload of the unit whose identifiers (sampling unit → identifier) are given, with
    ``attributes`` for targeting conditions.

    An experiment whose sampling unit has no identifier here (for example ``mw-user`` for a
    logged-out reader) is left out, as is every experiment the unit is not enrolled in.
    """
    opts = options or PayloadOptions()
    entries: dict[str, dict[str, str]] = {}
    for experiment in client_experiments(experiments, now, opts):
        identifier = identifiers.get(experiment.user_identifier_type)
        if identifier is None:
            continue
        result = assign(identifier, experiment, opts.site, attributes)
        if result.group is None:
            continue
        key = name_key(experiment.name, opts.salt) if opts.salt else experiment.name
        entries[key] = experiment_entry(experiment, result.group, result.subject_id)
    issued = int(now.timestamp())
    payload: dict[str, Any] = {
        "v": PAYLOAD_VERSION,
        "iat": issued,
        "exp": issued + opts.ttl_seconds,
        "experiments": entries,
    }
    if opts.salt:
        payload["salt"] = opts.salt
    return payload


def payload_bytes(payload: Mapping[str, Any]) -> bytes:
    """The canonical UTF-8 bytes of a payload (sorted keys, no whitespace): what is signed."""
    return canonical_json(payload).encode("utf-8")
