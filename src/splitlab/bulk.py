"""Bulk assignment for scripts: millions of identifiers, on every core.

The work is the core's :func:`~splitlab.core.assignment.assign_batch`; this module only splits
large inputs across forked worker processes. Each worker reads its slice of the input from the
memory it inherited at fork (nothing is pickled on the way in) and sends back the compact
:class:`~splitlab.core.assignment.Assignments` form (one string, one byte string), which is
cheap to move between processes and to join.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial

from splitlab.core.assignment import Assignments, Identifier, assign_batch
from splitlab.core.model import Experiment

PARALLEL_THRESHOLD = 500_000
"""Below this many identifiers one process is faster than starting workers."""


def _slice_worker(
    units: Sequence[Identifier], experiment: Experiment, site: str | None, span: tuple[int, int]
) -> Assignments:
    return assign_batch(units[span[0] : span[1]], experiment, site)


def assign_many(
    identifiers: Iterable[Identifier],
    experiment: Experiment,
    site: str | None = None,
    *,
    workers: int | None = None,
    chunk_size: int = 250_000,
    progress: Callable[[int], None] | None = None,
) -> Assignments:
    """Assign every identifier; the same answers as :func:`splitlab.assign`, in input order.

    ``workers`` defaults to the number of usable cores for inputs of at least
    :data:`PARALLEL_THRESHOLD` identifiers (one process otherwise, and where ``fork`` is not
    available). ``progress`` is called with the number of identifiers done after each chunk.
    """
    units = identifiers if isinstance(identifiers, list) else list(identifiers)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if len(units) >= PARALLEL_THRESHOLD else 1
    spans = [(i, min(i + chunk_size, len(units))) for i in range(0, len(units), chunk_size)]
    work = partial(_slice_worker, units, experiment, site)
    parallel = workers > 1 and len(spans) > 1
    if parallel and "fork" in multiprocessing.get_all_start_methods():
        # The partial travels by fork, not by pickle: the pool's initializer receives it whole.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, context, initializer=_remember, initargs=(work,)) as pool:
            return _collect(pool.map(_run_remembered, spans), experiment, progress)
    return _collect(map(work, spans), experiment, progress)


_remembered: list[Callable[[tuple[int, int]], Assignments]] = []


def _remember(work: Callable[[tuple[int, int]], Assignments]) -> None:
    _remembered.append(work)


def _run_remembered(span: tuple[int, int]) -> Assignments:
    return _remembered[-1](span)


def _collect(
    parts: Iterable[Assignments], experiment: Experiment, progress: Callable[[int], None] | None
) -> Assignments:
    done: list[Assignments] = []
    for part in parts:
        done.append(part)
        if progress is not None:
            progress(len(part))
    return Assignments.concat(done, experiment.groups)
