"""A config snapshot indexed for the client: by name, active per sampling unit, and the small
strings pages and headers need, each computed once per snapshot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from splitlab.core.decoration import EnrollmentResult, body_classes
from splitlab.core.headers import EXPERIMENT_NAME, GROUP_NAME
from splitlab.core.model import IDENTIFIER_TYPES, Experiment, window_changes


@dataclass(slots=True)
class ConfigIndex:
    """One config snapshot indexed for lookups, with the active experiments per sampling unit
    cached for the time window in which they stay the same."""

    by_name: Mapping[str, Experiment]
    _window: tuple[datetime, datetime, Mapping[str, tuple[Experiment, ...]]] | None = field(
        default=None
    )
    _header_entries: dict[tuple[str, str], str] = field(default_factory=dict)
    _class_entries: dict[tuple[str, str, str], str] = field(default_factory=dict)

    @classmethod
    def of(cls, experiments: Sequence[Experiment]) -> ConfigIndex:
        """Index ``experiments`` by name."""
        return cls({experiment.name: experiment for experiment in experiments})

    def active_by_unit(self, now: datetime) -> Mapping[str, tuple[Experiment, ...]]:
        """Active experiments at ``now``, grouped by sampling unit, in config order."""
        window = self._window
        if window is not None and window[0] <= now < window[1]:
            return window[2]
        grouped: dict[str, list[Experiment]] = {unit: [] for unit in IDENTIFIER_TYPES}
        low, high = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
        for experiment in self.by_name.values():
            if experiment.is_active(now):
                grouped[experiment.user_identifier_type].append(experiment)
            for change in window_changes(experiment.start, experiment.end):
                if change <= now:
                    low = max(low, change)
                else:
                    high = min(high, change)
        active = {unit: tuple(items) for unit, items in grouped.items()}
        self._window = (low, high, active)
        return active

    def header_entry(self, name: str, group: str) -> str:
        """``name=group;`` for the enrollments header, or ``""`` when either name breaks the
        header's grammar (such experiments are left out of the header)."""
        key = (name, group)
        entry = self._header_entries.get(key)
        if entry is None:
            valid = EXPERIMENT_NAME.fullmatch(name) and GROUP_NAME.fullmatch(group)
            entry = f"{name}={group};" if valid else ""
            self._header_entries[key] = entry
        return entry

    def body_classes(self, result: EnrollmentResult, prefix: str) -> str:
        """The core's :func:`~splitlab.core.decoration.body_classes` for ``result``, joined by
        spaces, with each experiment's pair computed once per snapshot (pages are hot)."""
        cache, parts = self._class_entries, []
        for name in result.enrolled:
            key = (prefix, name, result.assigned[name])
            entry = cache.get(key)
            if entry is None:
                single = EnrollmentResult(enrolled=[name], assigned={name: key[2]})
                entry = cache[key] = " ".join(body_classes(single, prefix))
            parts.append(entry)
        return " ".join(parts)
