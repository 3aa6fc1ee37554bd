"""The experiment model, built from a Test Kitchen experiment config row.

A row looks like what ``GET /api/v1/experiments`` returns::

    {"name": "sticky-header", "groups": ["control", "treatment"],
     "sample_rate": {"default": 0.1, "0.5": ["enwiki", "dewiki"]},
     "user_identifier_type": "edge-unique", "start": "2026-01-05T00:00:00Z",
     "end": "2026-02-05T00:00:00Z", "stream_name": "product_metrics.web_base",
     "schema_id": "/analytics/product_metrics/web/base/2.1.0",
     "contextual_attributes": ["page_namespace"], "phase_index": 0, "version": 1}

Validation here is what every config must satisfy to be assigned at all. The stricter naming
rules for experiments created in the registry live with the registry: configs already in the wild
may predate them and must still be assigned exactly as Test Kitchen does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from splitlab.core.exposure import exposure_version
from splitlab.core.slv2 import ALGORITHM as SL_V2
from splitlab.core.slv2 import DEFAULT_SITE, SlV2
from splitlab.errors import ConfigError

IDENTIFIER_TYPES = ("mw-user", "edge-unique", "session")
"""The sampling units Test Kitchen knows."""

DEFAULT_STREAM = "product_metrics.web_base"
"""The stream of Test Kitchen's web base schema (:data:`~splitlab.core.exposure.DEFAULT_SCHEMA`):
where events of a row that names none go, and what the registry fills in."""

ALGORITHM = "tk-v1"
ALGORITHMS = (ALGORITHM, SL_V2)
MAX_GROUPS = 254
"""Bulk results code a group in one byte (255 means out of sample)."""

_KNOWN_FIELDS = frozenset(
    {
        "name", "groups", "sample_rate", "user_identifier_type", "start", "end", "stream_name",
        "schema_id", "contextual_attributes", "phase_index", "version", "exposure_version",
        "algorithm", "traffic_split", "layer", "holdouts", "targeting",
    }
)


def _rate(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(where, f"must be a number in [0, 1], got {value!r}")
    rate = float(value)
    if not 0.0 <= rate <= 1.0:  # also rejects NaN
        raise ConfigError(where, f"must be in [0, 1], got {value!r}")
    return rate


def _rate_key(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(
            "sample_rate", f"key {text!r} is neither 'default' nor a rate in [0, 1]"
        ) from None
    return _rate(value, f"sample_rate[{text!r}]")


def _json_number(value: float) -> int | float:
    """Integral rates are written as integers so the canonical form is the same in JSON and JS."""
    return int(value) if value.is_integer() else value


@dataclass(frozen=True, slots=True)
class SampleRate:
    """A default sampling rate plus per-site overrides (site → rate)."""

    default: float
    by_site: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: object) -> SampleRate:
        """Parse ``{"default": r, "<rate>": [site, ...]}`` (or a bare number, the default)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(_rate(value, "sample_rate"))
        if not isinstance(value, Mapping):
            raise ConfigError("sample_rate", f"must be an object or a number, got {value!r}")
        if "default" not in value:
            raise ConfigError("sample_rate", "has no 'default' rate")
        default = _rate(value["default"], "sample_rate.default")
        by_site: dict[str, float] = {}
        for key, sites in value.items():
            if key == "default":
                continue
            rate = _rate_key(str(key))
            if not isinstance(sites, list) or not all(isinstance(s, str) and s for s in sites):
                raise ConfigError(
                    f"sample_rate[{key!r}]", "must be a list of non-empty site names"
                )
            for site in sites:
                if site in by_site and by_site[site] != rate:
                    raise ConfigError("sample_rate", f"site {site!r} is given two rates")
                by_site[site] = rate
        return cls(default, by_site)

    def for_site(self, site: str | None) -> float:
        """The rate in force on ``site`` (the default when the site has no override)."""
        if site is None:
            return self.default
        return self.by_site.get(site, self.default)

    def to_wire(self) -> dict[str, Any]:
        """The Test Kitchen form, with rates in their shortest spelling, sites sorted and keys
        sorted (``default`` last), as :func:`canonical_json` stores and the registry serves it:
        Test Kitchen's ``exposure_version`` depends on this key order."""
        wire: dict[str, Any] = {"default": _json_number(self.default)}
        for site, rate in self.by_site.items():
            wire.setdefault(repr(_json_number(rate)), []).append(site)
        return {key: wire[key] if key == "default" else sorted(wire[key]) for key in sorted(wire)}


def parse_time(value: object, where: str) -> datetime | None:
    """Parse an ISO 8601 timestamp (``Z`` or an offset; naive means UTC) into aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ConfigError(where, f"is not an ISO 8601 timestamp: {value!r}") from None
    else:
        raise ConfigError(where, f"must be an ISO 8601 string, got {value!r}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime | None) -> str | None:
    """The wire form of a timestamp: ISO 8601 in UTC with a ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def format_event_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``, as EventGate writes ``dt`` and ``meta.dt``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_window(row: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    """A row's ``start`` and ``end`` (either may be open); refuses a start after the end."""
    start = parse_time(row.get("start"), "start")
    end = parse_time(row.get("end"), "end")
    if start is not None and end is not None and start > end:
        raise ConfigError("start", f"is after end ({format_time(start)} > {format_time(end)})")
    return start, end


TICK = timedelta(microseconds=1)
"""The finest step of time here: an experiment is still active during its end's microsecond."""


def window_status(start: datetime | None, end: datetime | None, now: datetime) -> str:
    """Where ``now`` lies in the window ``start <= now <= end`` (Test Kitchen's: both ends
    included; an open bound is no bound): ``scheduled``, ``running`` or ``ended``."""
    if end is not None and now > end:
        return "ended"
    if start is not None and now < start:
        return "scheduled"
    return "running"


def window_changes(start: datetime | None, end: datetime | None) -> list[datetime]:
    """The instants at which :func:`window_status` changes: ``start``, and the first instant
    past ``end``."""
    changes = [] if start is None else [start]
    if end is not None and end < datetime.max.replace(tzinfo=UTC):
        changes.append(end + TICK)
    return changes


def string_list(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(where, f"must be a list of strings, got {value!r}")
    return tuple(value)


def optional_str(value: object, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(where, f"must be a string, got {value!r}")


def _int(value: object, where: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(where, f"must be a non-negative integer, got {value!r}")
    return value


class Memo(dict[Any, Any]):
    """A cache owned by one object: a copy or a pickle of its owner starts with an empty one
    (what it caches may not be picklable, and is recomputed on demand)."""

    def __reduce__(self) -> tuple[type[Memo], tuple[()]]:
        return Memo, ()


@dataclass(frozen=True, slots=True)
class Experiment:
    """One experiment phase, as Test Kitchen describes it. Build it with :meth:`from_config`."""

    name: str
    groups: tuple[str, ...]
    sample_rate: SampleRate
    user_identifier_type: str
    start: datetime | None = None
    end: datetime | None = None
    stream_name: str | None = None
    schema_id: str | None = None
    contextual_attributes: tuple[str, ...] = ()
    phase_index: int = 0
    version: int = 1
    algorithm: str = ALGORITHM
    slv2: SlV2 | None = None
    """The ``sl-v2`` part (traffic split and gates); ``None`` for ``tk-v1`` rows."""
    name_bytes: bytes = field(default=b"", repr=False, compare=False)
    """The UTF-8 name, the salt of the hash (precomputed: assignment is the hot path)."""
    layouts: dict[str | None, Any] = field(default_factory=dict, repr=False, compare=False)
    """Memo of the assignment module's per-site hash layout (a pure function of the fields)."""
    plans: dict[str | None, Any] = field(
        default_factory=lambda: Memo(), init=False, repr=False, compare=False)
    """Memo of the C accelerator's per-site evaluation plan (:mod:`splitlab.core.resolution`)."""

    exposure_version: str = field(default="", init=False, compare=False)
    """Test Kitchen's config digest of the row :meth:`to_config` serves
    (:func:`~splitlab.core.exposure.exposure_version`): the version MediaWiki computes for it.
    Computed once, since events and payloads read it constantly."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name_bytes", self.name.encode("utf-8"))
        object.__setattr__(self, "exposure_version", exposure_version(self._row()))

    @classmethod
    def from_config(cls, row: Mapping[str, Any], *, strict: bool = False) -> Experiment:
        """Validate a config row and build the experiment.

        Raises :class:`~splitlab.errors.ConfigError` naming the field and the reason. Unknown
        fields are ignored unless ``strict`` (the registry's mode, which refuses them).
        """
        if not isinstance(row, Mapping):
            kind = type(row).__name__
            raise ConfigError("", f"an experiment row must be a JSON object, got {kind}")
        if strict:
            unknown = sorted(set(row) - _KNOWN_FIELDS)
            if unknown:
                raise ConfigError(unknown[0], "is not a known experiment field")
        name = row.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("name", "must be a non-empty string")
        groups = row.get("groups")
        if not isinstance(groups, list) or not groups:
            raise ConfigError("groups", "must be a non-empty list of group names")
        if not all(isinstance(g, str) and g for g in groups):
            raise ConfigError("groups", "every group must be a non-empty string")
        if len(groups) > MAX_GROUPS:
            raise ConfigError("groups", f"at most {MAX_GROUPS} groups, got {len(groups)}")
        duplicates = sorted({g for g in groups if groups.count(g) > 1})
        if duplicates:
            raise ConfigError("groups", f"duplicate group {duplicates[0]!r}")
        algorithm = row.get("algorithm", ALGORITHM)
        if algorithm not in ALGORITHMS:
            raise ConfigError("algorithm", f"unknown assignment algorithm {algorithm!r}")
        v2 = SlV2.parse(row, tuple(groups)) if algorithm == SL_V2 else None
        if "sample_rate" in row:
            sample_rate = SampleRate.parse(row["sample_rate"])
        elif v2 is not None:  # old readers get each site's total
            sample_rate = _totals(v2)
        else:
            raise ConfigError("sample_rate", "is required")
        unit = row.get("user_identifier_type")
        if unit not in IDENTIFIER_TYPES:
            raise ConfigError(
                "user_identifier_type",
                f"must be one of {', '.join(IDENTIFIER_TYPES)}, got {unit!r}",
            )
        start, end = parse_window(row)
        return cls(
            name=name,
            groups=tuple(groups),
            sample_rate=sample_rate,
            user_identifier_type=str(unit),
            start=start,
            end=end,
            stream_name=optional_str(row.get("stream_name"), "stream_name"),
            schema_id=optional_str(row.get("schema_id"), "schema_id"),
            contextual_attributes=string_list(
                row.get("contextual_attributes"), "contextual_attributes"
            ),
            phase_index=_int(row.get("phase_index"), "phase_index", 0),
            version=_int(row.get("version"), "version", 1),
            algorithm=str(algorithm),
            slv2=v2,
        )

    def is_active(self, now: datetime) -> bool:
        """Whether ``now`` (aware) lies in ``start <= now <= end`` (:func:`window_status`)."""
        if now.tzinfo is None:
            raise TypeError("is_active needs an aware datetime (UTC)")
        return window_status(self.start, self.end, now) == "running"

    def to_config(self) -> dict[str, Any]:
        """The Test Kitchen config row of this experiment, with its ``exposure_version`` (and,
        for ``sl-v2``, its algorithm, traffic split and gates)."""
        return {**self._row(), "exposure_version": self.exposure_version}

    def _row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "name": self.name,
            "groups": list(self.groups),
            "sample_rate": self.sample_rate.to_wire(),
            "user_identifier_type": self.user_identifier_type,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "stream_name": self.stream_name,
            "schema_id": self.schema_id,
            "contextual_attributes": list(self.contextual_attributes),
            "phase_index": self.phase_index,
            "version": self.version,
        }
        if self.slv2 is not None:
            row.update(algorithm=self.algorithm, **self.slv2.to_wire())
        return row


def _totals(v2: SlV2) -> SampleRate:
    totals = v2.totals()
    default = totals.pop(DEFAULT_SITE, 0.0)
    return SampleRate(default, totals)


def canonical_json(value: object) -> str:
    """Sorted keys, no whitespace, UTF-8 text: the same bytes for the same content."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def experiments_from_document(document: object) -> list[Experiment]:
    """Experiments from what ``GET /api/v1/experiments`` returns: a list of rows, or
    ``{"experiments": [...]}``. Errors name the row by index and name."""
    rows = document.get("experiments") if isinstance(document, Mapping) else document
    if not isinstance(rows, list):
        raise ConfigError("", "expected a list of experiment rows or {\"experiments\": [...]}")
    experiments: list[Experiment] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        try:
            experiment = Experiment.from_config(row)
        except ConfigError as error:
            label = row.get("name") if isinstance(row, Mapping) else None
            where = f"experiments[{index}]" + (f" ({label})" if isinstance(label, str) else "")
            raise ConfigError(f"{where}.{error.field}" if error.field else where,
                              error.reason) from None
        if experiment.name in seen:
            raise ConfigError(f"experiments[{index}].name", f"duplicate name {experiment.name!r}")
        seen.add(experiment.name)
        experiments.append(experiment)
    return experiments
