"""The simulator: seeded experiment traffic with known true (relative) effects and faults.

One spec (:class:`Simulation`), two ways to realise it. :func:`simulate` writes events fast
(vectorised, millions of units) as Arrow tables of the analysis table's input shape;
:func:`send` sends a unit's traffic through the SDK, as an application would (no faults).


Units are integers ``1..units``; each is given a site (:func:`sites_of`: :data:`SITES`, plus every
site an ``sl-v2`` row splits on its own) and assigned on that site by the real core
(:func:`~splitlab.core.assignment.assign_batch`; :func:`~splitlab.core.assignment.assign` with
the unit's attributes ``site`` and ``is_logged_in`` when the row has a targeting condition), so
subject ids and groups are exactly what a client would log, in each site's configured split (an
``sl-v2`` row's ``traffic_split`` entry, else ``default``) and behind its holdouts and layer.
Every in-sample unit then produces, around its first enrollment time:

- ``1 + Poisson(0.3)`` ``experiment_enrollment`` events (the first one counts; ``action_source``
  drawn from :data:`ACTION_SOURCES`), and an ``experiment_exposure`` with probability 0.9;
- ``Poisson(clicks * lift * a)`` ``click`` events after enrollment and ``Poisson(clicks * a)``
  in the ``pre_days`` before it, where ``a ~ Gamma(2, 1/2)`` is the unit's activity (mean 1, so
  the pre-period count is a useful CUPED covariate);
- with probability ``conversion * lift`` (capped at 1), ``1 + Poisson(0.5)`` ``edit_saved``
  events whose ``action_context`` is a value drawn from an exponential of mean ``value_mean``.

``lift`` is the group's relative effect (1 for control), so the true relative effect of the
group on clicks per unit, on the share of units with an edit and on edit value per unit is
``lift - 1``, and on value per click it is 0. A :class:`Fault` drops a share of one group's
enrollment and exposure events; ``mixed_share`` of units also log one enrollment in a wrong group.

Through the SDK (:func:`send`), each unit ``1..units`` visits once: the SDK enrolls it and sends
its ``experiment_enrollment`` (``action_source`` :data:`SOURCE`) and ``experiment_exposure``, and
with probability ``conversion * lift`` (capped at 1) one ``edit_saved``: the same true effect on
the share of units with an edit.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from splitlab.analysis.table import EVENT_SCHEMA
from splitlab.core.assignment import OUT_OF_SAMPLE, SUBJECT_ID_LENGTH, assign, assign_batch
from splitlab.core.exposure import DEFAULT_SCHEMA
from splitlab.core.model import Experiment
from splitlab.sdk.client import Client
from splitlab.sdk.manager import ExperimentManager
from splitlab.simulate.arrow import fixed_strings, iso_times, uuids, write_events

__all__ = ["Fault", "GroupTally", "Simulation", "Summary", "send", "simulate", "write_events"]

ACTION_SOURCES = ("page_view", "api", "account_creation", "job")
_SOURCE_WEIGHTS = (0.7, 0.1, 0.1, 0.1)
SITES = ("enwiki", "dewiki", "frwiki", "jawiki")
_SITE_WEIGHTS = (0.5, 0.2, 0.2, 0.1)
_OWN_SITE_WEIGHT = 0.1
"""The traffic of a site that only an ``sl-v2`` row names, against :data:`_SITE_WEIGHTS`."""
_DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class Fault:
    """Lose ``lost_share`` of ``group``'s units' enrollment and exposure events."""

    group: str
    lost_share: float


@dataclass(frozen=True, slots=True)
class Simulation:
    """What to simulate. ``lifts`` maps a group to its relative effect (missing: 1, no effect)."""

    experiment: Experiment
    units: int
    seed: int = 0
    days: int = 14
    pre_days: int = 14
    clicks: float = 3.0
    conversion: float = 0.1
    value_mean: float = 20.0
    lifts: Mapping[str, float] = field(default_factory=dict)
    fault: Fault | None = None
    mixed_share: float = 0.0
    chunk_units: int = 250_000

    def __post_init__(self) -> None:
        """Refuse what cannot be simulated, with the reason (``ValueError``)."""
        groups = self.experiment.groups
        if self.units < 0:
            raise ValueError(f"units must be at least 0, got {self.units}")
        if not 0.0 <= self.mixed_share <= 1.0:
            raise ValueError(f"the mixed share must lie in [0, 1], got {self.mixed_share}")
        if not 0.0 <= self.conversion <= 1.0:
            raise ValueError(f"the base conversion rate must lie in [0, 1], got {self.conversion}")
        unknown = sorted(set(self.lifts) - set(groups))
        if unknown or any(lift < 0 for lift in self.lifts.values()):
            raise ValueError(f"lifts must be non-negative and name groups of the experiment "
                             f"({', '.join(groups)}); got {dict(self.lifts)}")
        if self.fault is not None:
            if self.fault.group not in groups:
                raise ValueError(f"fault group {self.fault.group!r} is not a group of the "
                                 "experiment")
            if not 0.0 <= self.fault.lost_share <= 1.0:
                raise ValueError(f"the lost share must lie in [0, 1], got {self.fault.lost_share}")

    def lift(self, group: str) -> float:
        return self.lifts.get(group, 1.0)

    def conversion_rate(self, group: str) -> float:
        """The true probability that a unit of ``group`` saves an edit."""
        return min(1.0, self.conversion * self.lift(group))


def sites_of(experiment: Experiment) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The simulated sites and their shares of the units: :data:`SITES`, then the sites an
    ``sl-v2`` row gives an entry of their own (so every configured split gets traffic)."""
    own = sorted(set(experiment.slv2.splits) - {"default", *SITES}) if experiment.slv2 else []
    if not own:
        return SITES, _SITE_WEIGHTS
    weights = (*_SITE_WEIGHTS, *(_OWN_SITE_WEIGHT for _ in own))
    return (*SITES, *own), tuple(w / sum(weights) for w in weights)


def simulate(spec: Simulation) -> Iterator[pa.Table]:
    """Yield the events of ``spec`` as Arrow tables of :data:`EVENT_SCHEMA`, one per chunk."""
    rng = np.random.default_rng(spec.seed)
    start = spec.experiment.start or datetime(2026, 11, 1, tzinfo=UTC)
    start_us = int(start.timestamp()) * 1_000_000
    for first in range(1, spec.units + 1, spec.chunk_units):
        last = min(first + spec.chunk_units, spec.units + 1)
        yield _chunk(spec, rng, np.arange(first, last, dtype=np.int64), start_us)


@dataclass(frozen=True, slots=True)
class _Units:
    names: tuple[str, ...]  # the sites the codes in ``sites`` stand for
    ids: np.ndarray  # int64 unit identifiers
    subjects: np.ndarray  # (n, 64) uint8 subject id characters
    groups: np.ndarray  # int group codes
    sites: np.ndarray  # int site codes
    enrolled_us: np.ndarray  # int64 first enrollment time


def _assign(spec: Simulation, rng: np.random.Generator, ids: np.ndarray, start_us: int) -> _Units:
    names, shares = sites_of(spec.experiment)
    sites = rng.choice(len(names), size=len(ids), p=shares)
    subjects = np.empty((len(ids), SUBJECT_ID_LENGTH), dtype=np.uint8)
    groups = np.empty(len(ids), dtype=np.int64)
    for code, site in enumerate(names):
        where = np.flatnonzero(sites == code)
        batch = assign_batch(ids[where].tolist(), spec.experiment, site)
        raw = np.frombuffer(batch.joined_subject_ids.encode("ascii"), dtype=np.uint8)
        subjects[where] = raw.reshape(-1, SUBJECT_ID_LENGTH)
        groups[where] = np.frombuffer(batch.group_codes, dtype=np.uint8)
        if spec.experiment.slv2 is not None and spec.experiment.slv2.targeting is not None:
            groups[where] = _targeted(spec.experiment, ids[where], site)
    keep = groups != OUT_OF_SAMPLE
    enrolled = start_us + rng.integers(0, spec.days * _DAY_US, size=int(keep.sum()))
    return _Units(names, ids[keep], subjects[keep], groups[keep], sites[keep], enrolled)


def _targeted(experiment: Experiment, ids: np.ndarray, site: str) -> np.ndarray:
    """The group codes of ``ids`` on ``site``, the targeting condition seeing the attributes a
    simulated unit has (its site, and whether it is logged in); the rest are ``null`` to it."""
    attributes = {"site": site, "is_logged_in": experiment.user_identifier_type == "mw-user"}
    codes = {group: code for code, group in enumerate(experiment.groups)}
    found = [assign(int(unit), experiment, site, attributes).group for unit in ids]
    return np.array([OUT_OF_SAMPLE if g is None else codes[g] for g in found], dtype=np.int64)


def _chunk(spec: Simulation, rng: np.random.Generator, ids: np.ndarray, start_us: int) -> pa.Table:
    units = _assign(spec, rng, ids, start_us)
    n = len(units.ids)
    lift = np.array([spec.lift(g) for g in spec.experiment.groups])[units.groups]
    activity = rng.gamma(2.0, 0.5, size=n)
    end_us = start_us + spec.days * _DAY_US
    lost = np.zeros(n, dtype=bool)
    if spec.fault is not None:
        hit = units.groups == spec.experiment.groups.index(spec.fault.group)
        lost = hit & (rng.random(n) < spec.fault.lost_share)
    parts: list[_Events] = []
    # Enrollments: the first at the enrollment time, repeats later; lost units log none.
    repeats = 1 + rng.poisson(0.3, size=n)
    owner = np.repeat(np.flatnonzero(~lost), repeats[~lost])
    first = np.r_[True, owner[1:] != owner[:-1]] if len(owner) else np.zeros(0, dtype=bool)
    when = np.where(first, units.enrolled_us[owner], _after(rng, units.enrolled_us[owner], end_us))
    source = rng.choice(len(ACTION_SOURCES), size=len(owner), p=_SOURCE_WEIGHTS)
    parts.append(_Events(owner, when, "experiment_enrollment", source=source))
    if spec.mixed_share > 0:
        mixed = np.flatnonzero(~lost & (rng.random(n) < spec.mixed_share))
        wrong = (units.groups[mixed] + 1) % len(spec.experiment.groups)
        when = _after(rng, units.enrolled_us[mixed], end_us)
        parts.append(_Events(mixed, when, "experiment_enrollment", source=np.zeros_like(mixed),
                             groups=wrong))
    exposed = np.flatnonzero(~lost & (rng.random(n) < 0.9))
    parts.append(_Events(exposed, _after(rng, units.enrolled_us[exposed], end_us),
                         "experiment_exposure"))
    clicker = np.repeat(np.arange(n), rng.poisson(spec.clicks * lift * activity))
    parts.append(_Events(clicker, _after(rng, units.enrolled_us[clicker], end_us), "click"))
    before = np.repeat(np.arange(n), rng.poisson(spec.clicks * activity))
    pre_start = units.enrolled_us[before] - spec.pre_days * _DAY_US
    parts.append(_Events(before, rng.integers(pre_start, units.enrolled_us[before]), "click"))
    converted = rng.random(n) < np.minimum(1.0, spec.conversion * lift)
    editor = np.repeat(np.arange(n), converted * (1 + rng.poisson(0.5, size=n)))
    values = np.round(rng.exponential(spec.value_mean, size=len(editor)), 2)
    parts.append(_Events(editor, _after(rng, units.enrolled_us[editor], end_us), "edit_saved",
                         values=values))
    return _table(spec, rng, units, parts)


def _after(rng: np.random.Generator, since: np.ndarray, end_us: int) -> np.ndarray:
    """A uniform time in ``(since, end]`` for each element."""
    offsets: np.ndarray = (rng.random(len(since)) * (end_us - since)).astype(np.int64)
    result: np.ndarray = since + 1 + offsets
    return result


@dataclass(frozen=True, slots=True)
class _Events:
    owner: np.ndarray  # index into the chunk's units
    when: np.ndarray  # int64 microseconds since the epoch
    action: str
    source: np.ndarray | None = None  # index into ACTION_SOURCES
    values: np.ndarray | None = None
    groups: np.ndarray | None = None  # group codes, when not the unit's own


def _table(spec: Simulation, rng: np.random.Generator, units: _Units, parts: list[_Events]) -> (
    pa.Table
):
    exp = spec.experiment
    owner = np.concatenate([p.owner for p in parts])
    when = np.concatenate([p.when for p in parts])
    count = len(owner)
    actions = [p.action for p in parts]
    action = _dictionary(np.repeat(np.arange(len(parts)), [len(p.owner) for p in parts]), actions)
    source = np.concatenate([
        p.source if p.source is not None else np.full(len(p.owner), -1) for p in parts
    ])
    context = pa.concat_arrays([
        pa.array(p.values).cast(pa.string()) if p.values is not None
        else pa.nulls(len(p.owner), pa.string()) for p in parts
    ])
    group = np.concatenate([
        p.groups if p.groups is not None else units.groups[p.owner] for p in parts
    ])
    dt = iso_times(when)
    sampling_unit = exp.user_identifier_type
    logged_in = sampling_unit == "mw-user"
    performer_id = pa.array(units.ids[owner], mask=np.full(count, sampling_unit != "mw-user"))
    sites = units.sites[owner]
    meta = pa.StructArray.from_arrays(
        [uuids(rng, count), iso_times(when + rng.integers(1, 2_000_000, size=count)),
         _constant(count, exp.stream_name or "product_metrics.web_base"),
         _dictionary(sites, [_domain(s) for s in units.names])],
        names=_names("meta"),
    )
    experiment = pa.StructArray.from_arrays(
        [_constant(count, exp.name), _dictionary(group, list(exp.groups)),
         fixed_strings(units.subjects[owner]), _constant(count, sampling_unit),
         _constant(count, "default"), _constant(count, exp.exposure_version)],
        names=_names("experiment"),
    )
    columns = [
        _constant(count, exp.schema_id or DEFAULT_SCHEMA), meta, dt, action,
        pa.DictionaryArray.from_arrays(pa.array(source.astype(np.int32), mask=source < 0),
                                       list(ACTION_SOURCES)),
        context,
        pa.StructArray.from_arrays([_dictionary(sites, list(units.names))],
                                   names=_names("mediawiki")),
        pa.StructArray.from_arrays([performer_id, _constant_bool(count, logged_in)],
                                   names=_names("performer")),
        experiment,
    ]
    return pa.Table.from_arrays(columns, names=EVENT_SCHEMA.names)


def _domain(site: str) -> str:
    """A plausible domain of a wiki database name (``dewiki`` → ``de.wikipedia.org``)."""
    return f"{site.removesuffix('wiki')}.wikipedia.org"


def _names(column: str) -> list[str]:
    return [f.name for f in EVENT_SCHEMA.field(column).type]


def _constant_bool(count: int, value: bool) -> pa.Array:
    return pa.array(np.full(count, value))


def _constant(count: int, value: str) -> pa.Array:
    return _dictionary(np.zeros(count, dtype=np.int32), [value])


def _dictionary(codes: np.ndarray, values: list[str]) -> pa.Array:
    """Low-cardinality text as a dictionary array (Parquet stores it dictionary-encoded)."""
    return pa.DictionaryArray.from_arrays(codes.astype(np.int32), values)


SOURCE = "simulation"


@dataclass(slots=True)
class GroupTally:
    """Units enrolled in one group, how many converted, and the true conversion rate."""

    true_rate: float
    units: int = 0
    conversions: int = 0


@dataclass(slots=True)
class Summary:
    """What :func:`send` sent: per group (in the experiment's group order), and the units
    enrolled per site."""

    groups: dict[str, GroupTally] = field(default_factory=dict)
    not_enrolled: int = 0
    sites: dict[str | None, int] = field(default_factory=dict)


def send(client: Client | Mapping[str | None, Client], spec: Simulation) -> Summary:
    """Send ``spec``'s traffic through ``client`` (whose sender receives the events), or through
    one client per site: each unit then visits one site, drawn with the shares the file
    simulation gives (:func:`sites_of`, among the sites given). Raises ``ValueError`` when no
    client is given, the clients do not know the experiment, it is not active now, or the spec
    asks for a fault or mixed units (the SDK logs neither)."""
    if spec.fault is not None or spec.mixed_share:
        raise ValueError("faults and mixed units are simulated only in files, not through the SDK")
    clients: dict[str | None, Client] = (
        {client.site: client} if isinstance(client, Client) else dict(client))
    if not clients:
        raise ValueError("no client to send through: give a client, or one per site")
    first = next(iter(clients.values()))
    experiment = first.experiment(spec.experiment.name)
    if experiment is None:
        raise ValueError(f"no experiment named {spec.experiment.name!r} in the config")
    if not experiment.is_active(first.now()):
        raise ValueError(f"experiment {experiment.name!r} is not active now")
    names, shares = sites_of(experiment)
    weights = {site: shares[names.index(site)] if site in names else _OWN_SITE_WEIGHT
               for site in clients}
    summary = Summary({g: GroupTally(spec.conversion_rate(g)) for g in experiment.groups})
    draws = random.Random(spec.seed)
    places = random.Random(spec.seed + 1)  # a stream of its own: one site draws nothing
    for number in range(1, spec.units + 1):
        site = (places.choices(list(weights), list(weights.values()))[0] if len(clients) > 1
                else first.site)
        manager = _manager_for(clients[site], experiment.user_identifier_type, number,
                               spec.seed)
        handle = manager.get_experiment(experiment.name)
        group = handle.get_assigned_group()
        converted = draws.random()  # drawn for every unit, so the sequence does not depend
        if group is None:           # on who is enrolled
            summary.not_enrolled += 1
            continue
        manager.log_enrollment(experiment.name, SOURCE)
        handle.send_exposure()
        summary.sites[site] = summary.sites.get(site, 0) + 1
        tally = summary.groups[group]
        tally.units += 1
        if converted < tally.true_rate:
            tally.conversions += 1
            handle.send("edit_saved", {"action_source": SOURCE})
    return summary


def _manager_for(client: Client, unit: str, number: int, seed: int) -> ExperimentManager:
    if unit == "mw-user":
        return client.manager(user_id=number)
    if unit == "session":
        return client.manager(session_id=f"sim-session-{seed}-{number}")
    return client.manager(anonymous_id=f"sim-anon-{seed}-{number}")
