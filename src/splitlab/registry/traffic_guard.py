"""The rules that keep a started experiment's units in their groups when its traffic changes,
and keep experiments of one layer exclusive.

Within a phase, on every site the experiment had traffic on, the group ratios (each site's
shares reduced by their gcd, in group order; a ``tk-v1`` row's groups are equal) never change:
raising (or lowering) all of a site's percents by one factor changes only the rate, so units
join (or leave) and none moves. Stopping a site's traffic on an ``sl-v2`` row is refused too:
it could restart later with other ratios. A site that had no traffic may get any split (adding
a site). A layer range may grow but never move, shrink, leave its layer or appear on a started
experiment. Experiments whose windows overlap never hold overlapping ranges of one layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from splitlab.core.model import Experiment, format_time
from splitlab.core.slv2 import DEFAULT_SITE, Layer, percent_of
from splitlab.errors import ConflictError

Shares = tuple[int, ...]


def site_shares(experiment: Experiment, site: str) -> Shares | None:
    """The reduced group shares on ``site`` (``default``: sites without their own entry), or
    ``None`` when the site gets no units."""
    v2 = experiment.slv2
    if v2 is None:
        rate = experiment.sample_rate.for_site(None if site == DEFAULT_SITE else site)
        return (1,) * len(experiment.groups) if rate > 0 else None
    split = v2.split_for(site)
    return split.shares if split is not None and any(split.weights) else None


def _sites(experiment: Experiment) -> set[str]:
    named = experiment.slv2.splits if experiment.slv2 is not None else \
        experiment.sample_rate.by_site
    return {DEFAULT_SITE, *named}


def _ratio(groups: Iterable[str], shares: Shares) -> str:
    return ", ".join(f"{group} {share}" for group, share in zip(groups, shares, strict=True))


def check_traffic(old: Experiment, new: Experiment) -> None:
    """Refuse (:class:`ConflictError`) a traffic change of the started ``old`` that would move
    units between groups (same groups and phase assumed: the phase rules come first)."""
    if old.slv2 is None and new.slv2 is None:
        return  # tk-v1 groups are equal on every site; its rates may change freely
    for site in sorted(_sites(old) | _sites(new)):
        before, after = site_shares(old, site), site_shares(new, site)
        if before is None or before == after:
            continue
        where = "sites without their own entry" if site == DEFAULT_SITE else f"site {site!r}"
        if after is None:
            raise ConflictError(
                f"experiment {old.name!r} has started; its traffic on {where} cannot stop "
                f"within a phase (it could later restart with other ratios and move units). "
                f"Lower all its percents by one factor, end the experiment, or start a new phase")
        raise ConflictError(
            f"experiment {old.name!r} has started; the group ratios on {where} cannot change "
            f"within a phase (units would move between groups): they are "
            f"{_ratio(old.groups, before)} and would become {_ratio(new.groups, after)}. Raise "
            f"all of the site's percents by one factor, or start a new phase")


def check_layer_change(old: Experiment, new: Experiment) -> None:
    """Refuse (:class:`ConflictError`) moving, shrinking, removing or adding the layer range of
    the started ``old``; growing it is allowed (overlap is :func:`check_layer_overlap`'s)."""
    before = old.slv2.layer if old.slv2 is not None else None
    after = new.slv2.layer if new.slv2 is not None else None
    if before == after:
        return
    if before is None:
        raise ConflictError(f"experiment {old.name!r} has started; it cannot join a layer "
                            f"within a phase (units outside the range would leave). Start a new "
                            f"phase instead")
    if after is None or after.name != before.name:
        raise ConflictError(f"experiment {old.name!r} has started; it cannot leave layer "
                            f"{before.name!r} within a phase. Start a new phase instead")
    if after.low > before.low or after.high < before.high:
        raise ConflictError(
            f"experiment {old.name!r} has started; its range of layer {before.name!r} can only "
            f"grow (units in it would leave): [{before.low}, {before.high}) must stay inside "
            f"the new range, not [{after.low}, {after.high})")


def check_holdout_change(old: Experiment, new: Experiment) -> None:
    """Refuse (:class:`ConflictError`) changing the percent of a holdout the started ``old``
    lists: units would move in or out of it (adding or removing a holdout is allowed)."""
    before = {h.name: h.weight for h in old.slv2.holdouts} if old.slv2 is not None else {}
    after = new.slv2.holdouts if new.slv2 is not None else ()
    for holdout in after:
        if before.get(holdout.name, holdout.weight) != holdout.weight:
            raise ConflictError(
                f"experiment {old.name!r} has started; the percent of its holdout "
                f"{holdout.name!r} cannot change within a phase (units would move in or out "
                f"of it): {percent_of(before[holdout.name])}, not {percent_of(holdout.weight)}")


def _overlap_in_time(one: Experiment, other: Experiment) -> bool:
    return ((one.start is None or other.end is None or one.start <= other.end)
            and (other.start is None or one.end is None or other.start <= one.end))


def check_layer_overlap(new: Experiment, others: Iterable[Mapping[str, Any]]) -> None:
    """Refuse (:class:`ConflictError`) ``new`` when an experiment among ``others`` (stored rows)
    whose window overlaps its own holds an overlapping range of the same layer."""
    layer = new.slv2.layer if new.slv2 is not None else None
    if layer is None:
        return
    for row in others:
        if row.get("layer") is None:
            continue
        other = Experiment.from_config(row)
        theirs: Layer | None = other.slv2.layer if other.slv2 is not None else None
        if (theirs is None or theirs.name != layer.name or other.name == new.name
                or theirs.high <= layer.low or layer.high <= theirs.low
                or not _overlap_in_time(new, other)):
            continue
        raise ConflictError(
            f"layer {layer.name!r}: the range [{layer.low}, {layer.high}) overlaps "
            f"[{theirs.low}, {theirs.high}) of experiment {other.name!r}, which runs at the same "
            f"time (until {format_time(other.end) or 'no end'}); experiments of one layer must "
            f"be exclusive. Choose a free range of the layer")
