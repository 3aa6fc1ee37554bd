"""``splitlab materialize`` and ``splitlab analyze``: events to Parquet, and the analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from splitlab.cli.common import err, fail, load_experiment, require_extra
from splitlab.errors import ConfigError
from splitlab.service.settings import memory_amount

ANALYSIS_MODULES = ("duckdb", "pyarrow", "numpy", "scipy", "sqlglot", "yaml")


def materialize_command(
    events: Annotated[Path, typer.Option(help="Events file (.jsonl/.parquet) or a directory.")],
    output: Annotated[Path, typer.Option(help="Analysis directory (Parquet by stream and day).")],
) -> None:
    """Materialise events into Parquet analysis tables, skipping inputs already done."""
    require_extra("analysis", "numpy", "pyarrow")
    from splitlab.analysis.materialize import materialize
    from splitlab.errors import AnalysisError

    try:
        result = materialize(events, output)
    except AnalysisError as error:
        fail(str(error))
    total = sum(result.written.values())
    err.print(f"materialised {len(result.written)} file(s), {total:,} events; skipped "
              f"{len(result.skipped)} already done", highlight=False)



def analyze_command(
    experiment: Annotated[str, typer.Option(help="Experiment name.")],
    events: Annotated[Path | None, typer.Option(help="Events file (.jsonl/.parquet) or dir.")] = (
        None
    ),
    data_dir: Annotated[Path | None, typer.Option(help="Materialised Parquet directory.")] = None,
    engine: Annotated[str, typer.Option(help="duckdb or spark.")] = "duckdb",
    metrics: Annotated[Path | None, typer.Option(help="Metrics catalog (YAML).")] = None,
    config: Annotated[Path | None, typer.Option(
        help="Config JSON holding the experiment: its groups (control first) and the split "
             "the SRM test expects on each site.")] = None,
    trigger: Annotated[str, typer.Option(help="Count units at first enrollment or exposure.")] = (
        "enrollment"
    ),
    srm_alpha: Annotated[float, typer.Option(help="Flag SRM when p is below this.")] = 0.001,
    alpha: Annotated[float, typer.Option(help="1 - confidence level of intervals.")] = 0.05,
    correction: Annotated[str, typer.Option(help="holm, bh or none.")] = "holm",
    output_format: Annotated[str, typer.Option("--format", help="text, json or html.")] = "text",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    memory: Annotated[str | None, typer.Option(
        help="Memory DuckDB may use, such as 4GB or 512MiB (beyond it, it spills to a scratch "
             "folder); default DuckDB's own, 80% of RAM.")] = None,
) -> None:
    """Units per group, sample ratio mismatch and metric effects of one experiment."""
    require_extra("analysis", *ANALYSIS_MODULES, *(("pyspark",) if engine == "spark" else ()))
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
    if memory is not None:
        if engine != "duckdb":
            fail("--memory caps DuckDB; Spark takes its memory from its own configuration")
        try:
            memory = memory_amount(memory.strip(), "--memory")
        except ConfigError as error:
            fail(str(error))
    settings: dict[str, Any] = {"trigger": trigger, "alpha": alpha, "srm_alpha": srm_alpha,
                "correction": correction}
    options = (Options.of(load_experiment(config, experiment), **settings) if config
               else Options(experiment, **settings))
    with tempfile.TemporaryDirectory(prefix="splitlab-analyze-") as scratch:
        try:
            catalog = load_catalog(metrics) if metrics else []
            directory = data_dir or Path(scratch) / "events"
            if events is not None and not sum(materialize(events, directory).written.values()):
                fail(f"no events in {events}: nothing to analyse")
            # DuckDB spills past its memory into the scratch folder (not the working directory)
            runner = open_engine(engine, memory, Path(scratch) / "spill")
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


