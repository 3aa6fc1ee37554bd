"""``splitlab assign``: one unit per line, or bulk CSV with a progress bar."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from splitlab.bulk import assign_many
from splitlab.cli.common import (
    err,
    fail,
    load_experiment,
    parse_identifier,
    read_identifiers,
)
from splitlab.core.assignment import OUT_OF_SAMPLE, assign


def assign_command(
    identifiers: Annotated[list[str] | None, typer.Argument(help="Unit identifiers.")] = None,
    config: Annotated[Path, typer.Option(help="Config JSON: a list of rows or {experiments}.")] = (
        Path("experiments.json")
    ),
    experiment: Annotated[str, typer.Option(help="Experiment name.")] = "",
    site: Annotated[str | None, typer.Option(help="Site (e.g. enwiki) for per-site rates.")] = None,
    ids_from: Annotated[Path | None, typer.Option(help="File of identifiers, one a line.")] = None,
    output: Annotated[Path | None, typer.Option(help="Write CSV here (bulk mode).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes for bulk (default: all cores).")
    ] = None,
) -> None:
    """Print each unit's subject id, whether it is in sample, and its group."""
    if not experiment:
        fail("--experiment is required")
    exp = load_experiment(config, experiment)
    if ids_from is None and not identifiers:
        fail("give identifiers as arguments or --ids-from FILE")
    if ids_from is None:
        for text in identifiers or []:
            result = assign(parse_identifier(text), exp, site)
            status = result.group if result.in_sample else "not-in-sample"
            typer.echo(f"{text}\t{result.subject_id}\t{status}")
        return
    units = read_identifiers(ids_from) + [parse_identifier(t) for t in identifiers or []]
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=err, transient=True,
    ) as bar:
        task = bar.add_task("assigning", total=len(units))
        results = assign_many(
            units, exp, site, workers=workers, progress=lambda n: bar.advance(task, n)
        )
    target = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        writer = csv.writer(target)
        writer.writerow(["identifier", "subject_id", "in_sample", "group"])
        groups = results.groups  # built on each access: read it once
        for unit, subject, group in zip(units, results.subject_ids, groups, strict=True):
            writer.writerow([unit, subject, "true" if group else "false", group or ""])
    finally:
        if output:
            target.close()
    in_sample = len(results) - results.group_codes.count(OUT_OF_SAMPLE)
    where = f" to {output}" if output else ""
    err.print(f"assigned {len(units):,} units ({in_sample:,} in sample){where}", highlight=False)

