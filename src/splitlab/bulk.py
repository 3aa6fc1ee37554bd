"""Bulk assignment for scripts: millions of identifiers, on every core.

The work is the core's :func:`~splitlab.core.assignment.assign_batch`; this module only splits
large inputs across workers. With the C accelerator, a batch hashes with the GIL released, so
workers are threads sharing the input and the results. Without it, workers are forked
processes that read their slice from the memory they inherited (nothing is pickled on the way
in) and send back the compact :class:`~splitlab.core.assignment.Assignments` form.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from typing import Literal

from splitlab.core.assignment import ACCELERATED, Assignments, Identifier, assign_batch
from splitlab.core.model import Experiment

PARALLEL_THRESHOLD = 500_000
"""Below this many identifiers one worker is faster than starting several."""

Span = tuple[int, int]
PoolKind = Literal["auto", "threads", "processes"]


def _slice_worker(
    units: Sequence[Identifier], experiment: Experiment, site: str | None, span: Span
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
    pool: PoolKind = "auto",
) -> Assignments:
    """Assign every identifier; the same answers as :func:`splitlab.assign`, in input order.

    ``workers`` defaults to the number of usable cores for inputs of at least
    :data:`PARALLEL_THRESHOLD` identifiers, and to one below it. ``progress`` is called with the
    number of identifiers done after each chunk. ``pool`` picks the kind of workers: ``auto``
    is threads with the C accelerator (it releases the GIL) and forked processes without it.
    """
    units = identifiers if isinstance(identifiers, list) else list(identifiers)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if len(units) >= PARALLEL_THRESHOLD else 1
    spans = [(i, min(i + chunk_size, len(units))) for i in range(0, len(units), chunk_size)]
    work = partial(_slice_worker, units, experiment, site)
    if workers <= 1 or len(spans) <= 1:
        return _collect(map(work, spans), experiment, progress)
    with _executor(workers, work, pool) as executor:
        return _collect(_run(executor, work, spans), experiment, progress)


def _executor(workers: int, work: Callable[[Span], Assignments], kind: PoolKind) -> Executor:
    if kind == "auto":
        kind = "threads" if ACCELERATED else "processes"
    if kind == "threads" or "fork" not in multiprocessing.get_all_start_methods():
        return ThreadPoolExecutor(workers)
    # Forked workers receive the partial (and so the whole input) by inheritance, not pickle.
    context = multiprocessing.get_context("fork")
    return ProcessPoolExecutor(workers, context, initializer=_remember, initargs=(work,))


def _run(
    executor: Executor, work: Callable[[Span], Assignments], spans: list[Span]
) -> Iterator[Assignments]:
    if isinstance(executor, ThreadPoolExecutor):
        return executor.map(work, spans)
    return executor.map(_run_remembered, spans)


_remembered: list[Callable[[Span], Assignments]] = []
"""The job of a forked worker process (set once per process by its initializer)."""


def _remember(work: Callable[[Span], Assignments]) -> None:
    _remembered.append(work)


def _run_remembered(span: Span) -> Assignments:
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
