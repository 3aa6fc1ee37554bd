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

A targeted ``sl-v2`` experiment is decided where its condition's attributes are known. The
server always runs the holdouts, the layer and the slot (they need no attributes). When every
attribute the condition reads (:func:`~splitlab.core.targeting.referenced_attributes`) is among
the ``attributes`` given, the server evaluates the condition too: the entry is listed as above
when it holds, left out when it does not. Otherwise the entry carries the condition and the
server's values of the attributes it reads, and nothing else, for the browser to decide on
those merged over the page's own (the server's win)::

    "viewport-exp": {"group": "treatment", ..., "targeting": {"viewport": {"$gte": 1200},
                     "platform": "desktop"}, "attributes": {"platform": "desktop"}}

The condition and those attributes are inside the signed bytes, under the hashed key too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from splitlab.core.assignment import Identifier
from splitlab.core.exposure import DEFAULT_SCHEMA
from splitlab.core.model import DEFAULT_STREAM, Experiment, canonical_json
from splitlab.core.resolution import resolve, resolve_except_targeting
from splitlab.core.targeting import referenced_attributes

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


def experiment_entry(experiment: Experiment, group: str, subject: str) -> dict[str, Any]:
    """What the browser needs about one enrollment (stream and schema default to the web base)."""
    return {
        "group": group,
        "subject_id": subject,
        "exposure_version": experiment.exposure_version,
        "sampling_unit": experiment.user_identifier_type,
        "stream_name": experiment.stream_name or DEFAULT_STREAM,
        "schema_id": experiment.schema_id or DEFAULT_SCHEMA,
    }


def unit_entry(
    identifier: Identifier, experiment: Experiment, site: str | None,
    attributes: Mapping[str, Any],
) -> dict[str, Any] | None:
    """The payload entry of one active experiment for the unit ``identifier`` (``None``: not
    enrolled), deciding a targeting condition on the server only when ``attributes`` has every
    attribute it reads (see the module doc)."""
    condition = experiment.slv2.targeting if experiment.slv2 is not None else None
    needed = referenced_attributes(condition) if condition is not None else frozenset()
    in_browser = condition is not None and not needed <= attributes.keys()
    found = (resolve_except_targeting(identifier, experiment, site) if in_browser
             else resolve(identifier, experiment, site, attributes))
    if not found.enrolled or found.subject_id is None:
        return None
    entry = experiment_entry(experiment, found.group or "", found.subject_id)
    if in_browser:
        entry["targeting"] = condition
        entry["attributes"] = {name: attributes[name]
                               for name in sorted(needed & attributes.keys())}
    return entry


def build_payload(
    experiments: Iterable[Experiment],
    identifiers: Mapping[str, Identifier],
    now: datetime,
    options: PayloadOptions | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload of the unit whose identifiers (sampling unit → identifier) are given, with
    ``attributes`` (what the server knows) for targeting conditions.

    An experiment whose sampling unit has no identifier here (for example ``mw-user`` for a
    logged-out reader) is left out, as is every experiment the unit is not enrolled in; a
    targeted one whose condition reads an attribute missing from ``attributes`` carries the
    condition for the browser instead (see the module doc).
    """
    opts = options or PayloadOptions()
    known = attributes or {}
    entries: dict[str, dict[str, Any]] = {}
    for experiment in client_experiments(experiments, now, opts):
        identifier = identifiers.get(experiment.user_identifier_type)
        if identifier is None:
            continue
        entry = unit_entry(identifier, experiment, opts.site, known)
        if entry is not None:
            key = name_key(experiment.name, opts.salt) if opts.salt else experiment.name
            entries[key] = entry
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


def decided_entries(payload: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The payload's ``(key, entry)`` pairs that the server decided: those without a condition
    left to the browser. Only these may style the first HTML (body classes); the others are
    enrolled only once the browser SDK has evaluated their condition."""
    for key, entry in payload.get("experiments", {}).items():
        if "targeting" not in entry:
            yield key, entry


def payload_bytes(payload: Mapping[str, Any]) -> bytes:
    """The canonical UTF-8 bytes of a payload (sorted keys, no whitespace): what is signed."""
    return canonical_json(payload).encode("utf-8")
