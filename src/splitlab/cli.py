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
from splitlab.errors import ConfigError

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


def main() -> None:
    """Entry point of the ``splitlab`` console script."""
    app()


# --- analysis: simulate, materialize, analyze -------------------------------------------------


def _experiment_for(config: Path | None, name: str, groups: str) -> Experiment:
    """The named experiment from ``config``, or an ad-hoc one (rate 1, mw-user) with ``groups``."""
    if config is not None:
        return load_experiment(config, name)
    try:
        return Experiment.from_config({
            "name": name, "groups": [g.strip() for g in groups.split(",") if g.strip()],
            "sample_rate": {"default": 1}, "user_identifier_type": "mw-user",
        })
    except ConfigError as error:
        fail(str(error))


def _pairs(values: list[str], option: str) -> dict[str, float]:
    """``group=number`` options as a mapping."""
    parsed: dict[str, float] = {}
    for text in values:
        group, _, number = text.partition("=")
        try:
            parsed[group] = float(number)
        except ValueError:
            fail(f"{option} must look like group=number, got {text!r}")
    return parsed


@app.command("simulate")
def simulate_command(
    output: Annotated[Path, typer.Option(help="Events file: .parquet, or .jsonl for JSON lines.")],
    experiment: Annotated[str, typer.Option(help="Experiment name.")] = "simulated-experiment",
    config: Annotated[Path | None, typer.Option(help="Config JSON holding the experiment.")] = None,
    groups: Annotated[str, typer.Option(help="Groups without --config, control first.")] = (
        "control,treatment"
    ),
    units: Annotated[int, typer.Option(help="Units offered to the experiment.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    lift: Annotated[list[str] | None, typer.Option(help="group=relative effect, e.g. b=1.05.")] = (
        None
    ),
    fault: Annotated[str | None, typer.Option(help="group=share of its enrollments lost.")] = None,
    mixed_share: Annotated[float, typer.Option(help="Share of units seen in two groups.")] = 0.0,
) -> None:
    """Write simulated events (web base shape) with known effects and optional faults."""
    from splitlab.analysis.simulate import Fault, Simulation, simulate, write_events

    exp = _experiment_for(config, experiment, groups)
    lost = _pairs([fault], "--fault") if fault else {}
    spec = Simulation(
        exp, units, seed=seed, lifts=_pairs(lift or [], "--lift"), mixed_share=mixed_share,
        fault=Fault(*next(iter(lost.items()))) if lost else None,
    )
    try:
        count = write_events(simulate(spec), output)
    except ValueError as error:
        fail(str(error))
    err.print(f"wrote {count:,} events of {exp.name} to {output}", highlight=False)


@app.command("materialize")
def materialize_command(
    events: Annotated[Path, typer.Option(help="Events file (.jsonl/.parquet) or a directory.")],
    output: Annotated[Path, typer.Option(help="Analysis directory (Parquet by stream and day).")],
) -> None:
    """Materialise events into Parquet analysis tables, skipping inputs already done."""
    from splitlab.analysis.materialize import materialize
    from splitlab.errors import AnalysisError

    try:
        result = materialize(events, output)
    except AnalysisError as error:
        fail(str(error))
    total = sum(result.written.values())
    err.print(f"materialised {len(result.written)} file(s), {total:,} events; skipped "
              f"{len(result.skipped)} already done", highlight=False)


@app.command("analyze")
def analyze_command(
    experiment: Annotated[str, typer.Option(help="Experiment name.")],
    events: Annotated[Path | None, typer.Option(help="Events file (.jsonl/.parquet) or dir.")] = (
        None
    ),
    data_dir: Annotated[Path | None, typer.Option(help="Materialised Parquet directory.")] = None,
    engine: Annotated[str, typer.Option(help="duckdb or spark.")] = "duckdb",
    metrics: Annotated[Path | None, typer.Option(help="Metrics catalog (YAML).")] = None,
    config: Annotated[Path | None, typer.Option(help="Config JSON: the groups, control first.")] = (
        None
    ),
    weights: Annotated[str | None, typer.Option(help="Configured shares, e.g. 50,50.")] = None,
    trigger: Annotated[str, typer.Option(help="Count units at first enrollment or exposure.")] = (
        "enrollment"
    ),
    srm_alpha: Annotated[float, typer.Option(help="Flag SRM when p is below this.")] = 0.001,
    alpha: Annotated[float, typer.Option(help="1 - confidence level of intervals.")] = 0.05,
    correction: Annotated[str, typer.Option(help="holm, bh or none.")] = "holm",
    output_format: Annotated[str, typer.Option("--format", help="text, json or html.")] = "text",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Units per group, sample ratio mismatch and metric effects of one experiment."""
    import tempfile

    from splitlab.analysis import report as render
    from splitlab.analysis.analyze import Options, analyze
    from splitlab.analysis.engines import open_engine
    from splitlab.analysis.materialize import materialize
    from splitlab.analysis.metrics import load_catalog
    from splitlab.errors import AnalysisError

    if (events is None) == (data_dir is None):
        fail("give exactly one of --events PATH or --data-dir DIR")
    if output_format not in ("text", "json", "html"):
        fail(f"--format must be text, json or html, not {output_format!r}")
    groups = load_experiment(config, experiment).groups if config else ()
    try:
        shares = tuple(float(w) for w in weights.split(",")) if weights else ()
    except ValueError:
        fail(f"--weights must be numbers separated by commas, got {weights!r}")
    if shares and (len(shares) != len(groups) or min(shares) < 0):
        fail("--weights needs --config and one non-negative share per configured group")
    options = Options(experiment, groups, shares, trigger, alpha, srm_alpha, correction)
    with tempfile.TemporaryDirectory(prefix="splitlab-analyze-") as scratch:
        try:
            catalog = load_catalog(metrics) if metrics else []
            directory = data_dir or Path(scratch)
            if events is not None:
                materialize(events, directory)
            runner = open_engine(engine)
            try:
                runner.load_events(directory)
                result = analyze(runner, options, catalog)
            finally:
                runner.close()
        except (AnalysisError, ValueError) as error:
            fail(str(error))
    text = {"text": render.to_text, "json": render.to_json, "html": render.to_html}[
        output_format
    ](result)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}", highlight=False)
