"""The ``splitlab`` command: the composition root that wires the pieces together."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from splitlab.bulk import assign_many
from splitlab.core.assignment import Identifier, assign
from splitlab.core.model import Experiment, experiments_from_document
from splitlab.errors import ConfigError, NotFoundError
from splitlab.intake.export import EventReader, open_reader
from splitlab.intake.export import export as export_events
from splitlab.intake.export import tail as tail_events

app = typer.Typer(
    name="splitlab",
    help="Self-hostable experimentation: assignment, registry, event intake and analysis.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)


@app.callback()
def splitlab_main() -> None:
    """Self-hostable experimentation: assignment, registry, event intake and analysis."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error and exit (2: bad input)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_experiment(config: Path, name: str) -> Experiment:
    """The named experiment from a config file (what ``GET /api/v1/experiments`` returns)."""
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except OSError as error:
        fail(f"cannot read {config}: {error.strerror or error}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        fail(f"{config} is not valid JSON: {error}")
    try:
        experiments = {e.name: e for e in experiments_from_document(document)}
    except ConfigError as error:
        fail(f"{config}: {error}")
    if name not in experiments:
        known = ", ".join(sorted(experiments)) or "none"
        fail(f"no experiment {name!r} in {config} (it has: {known})")
    return experiments[name]


def parse_identifier(text: str) -> Identifier:
    """Decimal digits are a numeric id (as Test Kitchen's user ids); anything else a string."""
    return int(text) if text.isascii() and text.isdigit() and text == str(int(text)) else text


def read_identifiers(path: Path) -> list[Identifier]:
    """One identifier per line; blank lines are skipped."""
    try:
        with path.open(encoding="utf-8") as lines:
            return [parse_identifier(s) for line in lines if (s := line.strip())]
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror or error}")
    except UnicodeDecodeError as error:
        fail(f"{path} is not UTF-8 text: {error}")


@app.command("assign")
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
        for unit, subject, group in zip(units, results.subject_ids, results.groups, strict=True):
            writer.writerow([unit, subject, "true" if group else "false", group or ""])
    finally:
        if output:
            target.close()
    in_sample = sum(1 for g in results.groups if g is not None)
    where = f" to {output}" if output else ""
    err.print(f"assigned {len(units):,} units ({in_sample:,} in sample){where}", highlight=False)


@app.command("serve")
def serve_command(
    data_dir: Annotated[Path, typer.Option(help="Data directory (SQLite files, keys).")] = Path(
        "data"
    ),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    demo: Annotated[bool, typer.Option(help="Seed a few realistic experiments.")] = False,
) -> None:
    """Start the service on the embedded default (SQLite; no other server needed)."""
    import os

    import uvicorn

    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["SPLITLAB_DATA_DIR"] = str(data_dir.resolve())
    if demo:
        os.environ["SPLITLAB_DEMO"] = "1"
    err.print(f"splitlab listening on http://{host}:{port} (data in {data_dir.resolve()})")
    uvicorn.run(
        "splitlab.service.app:app_from_env", factory=True, host=host, port=port,
        workers=workers, log_level="warning", timeout_graceful_shutdown=10,
    )


# --- events: reading back the event log the intake stored -------------------------------------

events_app = typer.Typer(help="Read back the events the intake stored.", no_args_is_help=True)
app.add_typer(events_app, name="events")
DataDir = Annotated[Path, typer.Option(help="Data directory of the embedded event log.")]
Source = Annotated[str, typer.Option(
    envvar="SPLITLAB_EVENTS_SINK", help="Where the events are: sqlite or postgresql.")]
DatabaseUrl = Annotated[str | None, typer.Option(
    envvar="SPLITLAB_DATABASE_URL", help="PostgreSQL URL (with --source postgresql).")]
StreamOption = Annotated[str | None, typer.Option(help="Only events of this stream.")]


def event_reader(data_dir: Path, source: str, database_url: str | None) -> EventReader:
    """The reader for ``--source``; exits with a one-line error when it cannot be opened."""
    if source not in ("sqlite", "postgresql"):
        fail(f"--source must be sqlite or postgresql, not {source!r}")
    if source == "postgresql" and not database_url:
        fail("--source postgresql needs --database-url or SPLITLAB_DATABASE_URL")
    try:
        return open_reader(data_dir, database_url if source == "postgresql" else None)
    except NotFoundError as error:
        fail(str(error))
    except Exception as error:  # a driver's connection error: say it in one line
        fail(f"cannot open the event log: {error}")


@events_app.command("export")
def events_export(
    output: Annotated[Path, typer.Option(help="File to write (.jsonl or .parquet).")],
    stream: StreamOption = None,
    since: Annotated[str | None, typer.Option(help="Received at or after (ISO 8601).")] = None,
    format: Annotated[str | None, typer.Option(help="jsonl or parquet (default: by extension).")
                      ] = None,
    data_dir: DataDir = Path("data"),
    source: Source = "sqlite",
    database_url: DatabaseUrl = None,
) -> None:
    """Write stored events to a JSON-lines or Parquet file."""
    reader = event_reader(data_dir, source, database_url)
    try:
        count = export_events(reader, output, stream, since, format)
    except ConfigError as error:
        fail(str(error))
    finally:
        reader.close()
    err.print(f"exported {count:,} events to {output}", highlight=False)


@events_app.command("tail")
def events_tail(
    stream: StreamOption = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many recent events.")] = 10,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")
                      ] = False,
    data_dir: DataDir = Path("data"),
    source: Source = "sqlite",
    database_url: DatabaseUrl = None,
) -> None:
    """Print the newest stored events as JSON lines (and follow new ones with -f)."""
    reader = event_reader(data_dir, source, database_url)
    try:
        for event in tail_events(reader, stream, lines, follow):
            typer.echo(event.body.decode())
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()


def main() -> None:
    """Entry point of the ``splitlab`` console script."""
    app()
