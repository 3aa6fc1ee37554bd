"""What the dashboard keeps between requests, so a page over hundreds of experiments does not
re-read and re-parse them all each time.

- :class:`RegistryView`: the registry's experiment records, and the core objects built from
  them, as of the registry's change counter. The counter is read on every call (one single-row
  query): every write from any process or host bumps it in the same transaction, so a page never
  shows a row older than the database's.
- :class:`LatestRuns`: the newest results run of each experiment. A stored run never changes, so a
  parsed run is kept by its id; each call asks the database only which ids are newest (an
  index-only query) and reads and parses the runs it has not seen.

Both are safe to share by the threads serving requests: each keeps one immutable value that a call
replaces as a whole, so two calls racing only do the same work twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from splitlab.core.model import Experiment
from splitlab.registry.store import Record, Registry
from splitlab.results.store import ResultsStore, Run


class RegistryView:
    """The experiment records of the registry ``registry()`` returns (its current store)."""

    def __init__(self, registry: Callable[[], Registry]) -> None:
        self.registry = registry
        self._records: tuple[Registry | None, int, tuple[Record, ...]] = (None, -1, ())
        self._experiments: tuple[tuple[Record, ...], tuple[Experiment, ...]] = ((), ())

    def records(self) -> tuple[Record, ...]:
        """Every experiment record, ended ones included, by name (as ``Registry.records``)."""
        registry = self.registry()
        counter = registry.change_counter()
        held, seen, records = self._records
        if held is not registry or seen != counter:
            # Read after the counter: a write in between is seen now and re-read next time.
            records = tuple(registry.records("experiment"))
            self._records = (registry, counter, records)
        return records

    def experiments(self) -> tuple[Experiment, ...]:
        """Every experiment as the core's :class:`Experiment` (callers check activity), built
        once per change of the records."""
        records = self.records()
        built_from, experiments = self._experiments
        if built_from is not records:
            experiments = tuple(Experiment.from_config(r.row) for r in records)
            self._experiments = (records, experiments)
        return experiments


class LatestRuns:
    """The newest run of each experiment, parsed once per run."""

    def __init__(self) -> None:
        self._runs: tuple[Engine | None, dict[int, Run]] = (None, {})

    def of(self, store: ResultsStore, experiments: Sequence[str]) -> dict[str, Run]:
        """The newest run of each of ``experiments`` that has one (as ``store.latest_of``)."""
        newest = store.latest_ids(experiments)
        engine, known = self._runs
        if engine is not store.engine:
            known = {}
        missing = [run_id for run_id in newest.values() if run_id not in known]
        fetched = {run.id: run for run in store.runs_by_id(missing)}
        runs = {run_id: run for run_id in newest.values()
                if (run := known.get(run_id) or fetched.get(run_id)) is not None}
        self._runs = (store.engine, runs)
        return {name: runs[run_id] for name, run_id in newest.items() if run_id in runs}
