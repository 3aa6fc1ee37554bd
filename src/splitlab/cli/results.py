"""``splitlab results run``: the results worker, and ``splitlab metrics ...``: the metrics catalog
on a running server."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from splitlab.cli.common import err, fail, print_json
from splitlab.cli.experiments import DEFAULT_URL, TokenOption, UrlOption, registry_client, remote

results_app = typer.Typer(help="Continuous results: extend the lake and compute every running "
                               "experiment's results.", no_args_is_help=True)
metrics_app = typer.Typer(help="The metrics catalog and the metrics each experiment names.",
                          no_args_is_help=True)


@results_app.command("run")
def results_run(
    once: Annotated[bool, typer.Option("--once", help="One run, then exit.")] = False,
    engine: Annotated[str, typer.Option(help="duckdb or spark.")] = "duckdb",
    interval: Annotated[float, typer.Option(envvar="SPLITLAB_RESULTS_INTERVAL",
                                            help="Seconds between runs.")] = 300,
    data_dir: Annotated[Path, typer.Option(envvar="SPLITLAB_DATA_DIR",
                                           help="Data directory (the lake is in lake/).")] = Path(
        "data"),
    lease: Annotated[float, typer.Option(help="Seconds a scheduler that stops answering keeps "
                                              "the others waiting.")] = 60,
) -> None:
    """The results worker: each interval, extend the lake from the event log (or the JetStream
    consumer) and store every running experiment's results in the registry database.

    Reads SPLITLAB_DATABASE_URL, SPLITLAB_EVENTS_SINK, SPLITLAB_NATS_URL, SPLITLAB_NATS_STREAM,
    SPLITLAB_TABLE_PREFIX, SPLITLAB_STREAMS_FILE and SPLITLAB_RESULTS_MEMORY like the service.
    Only one scheduler computes at a time (a lease in the registry database): run as many as
    you like.
    """
    from splitlab.errors import SplitlabError
    from splitlab.intake.streams import load_catalog
    from splitlab.process import tune_collector
    from splitlab.registry.store import Registry
    from splitlab.results.runner import RunnerConfig, build_scheduler
    from splitlab.service.settings import Settings

    if engine not in ("duckdb", "spark"):
        fail(f"--engine must be duckdb or spark, not {engine!r}")
    if interval <= 0 and not once:
        fail("--interval must be more than 0 (or give --once)")
    try:
        settings = Settings.from_env()
        registry = Registry.open(settings.database_url, data_dir.resolve(),
                                 prefix=settings.table_prefix)
        config = RunnerConfig(data_dir.resolve(), settings.events_sink, settings.database_url,
                              settings.table_prefix, settings.nats_url, settings.nats_stream,
                              engine, load_catalog(settings.streams_file).error_stream,
                              lease_seconds=max(lease, 1.0),
                              memory_limit=settings.results_memory)
        scheduler = build_scheduler(registry, config)
    except (SplitlabError, ValueError) as error:
        fail(str(error))
    tune_collector()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _number, _frame: stop.set())
    try:
        while True:
            try:
                summary = scheduler.run_once()
            except Exception as error:  # like the in-service scheduler: the next interval retries
                if once:
                    fail(f"the results run failed: {error}", code=1)
                err.print(f"the results run failed ({type(error).__name__}: {error}); "
                          f"retrying in {interval:g} s", highlight=False)
                if stop.wait(interval):
                    break
                continue
            if summary is None:
                err.print("another scheduler holds the lease; not computing", highlight=False)
            else:
                err.print(f"lake +{summary.lake.written:,} events ({summary.lake.duplicates:,} "
                          f"duplicates skipped); results stored for "
                          f"{', '.join(summary.stored) or 'no experiment'}", highlight=False)
                for name, reason in summary.skipped.items():
                    err.print(f"  {name}: {reason}", highlight=False)
            if once or stop.wait(interval):
                break
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.close()
        registry.close()


def _definition(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror or error}")
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        fail(f"{path} is not valid JSON/YAML: {error}")


@metrics_app.command("list")
def metrics_list(url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Every metric of the catalog (JSON)."""
    client = registry_client(url, token)
    print_json(remote(lambda: client.call("GET", "/api/v1/metrics").json()))


@metrics_app.command("show")
def metrics_show(name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """One metric's definition (JSON)."""
    client = registry_client(url, token)
    print_json(remote(lambda: client.call("GET", f"/api/v1/metrics/{name}").json()))


@metrics_app.command("put")
def metrics_put(
    name: str,
    file: Annotated[Path, typer.Option(help="The definition: YAML or JSON, as one entry of a "
                                            "metrics catalog (kind, filter, ...).")],
    url: UrlOption = DEFAULT_URL, token: TokenOption = None,
) -> None:
    """Create or replace a metric of the catalog."""
    definition = _definition(file)
    client = registry_client(url, token)
    print_json(remote(lambda: client.call("PUT", f"/api/v1/metrics/{name}",
                                          json=definition).json()))


@metrics_app.command("delete")
def metrics_delete(name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Remove a metric no experiment names."""
    client = registry_client(url, token)
    remote(lambda: client.call("DELETE", f"/api/v1/metrics/{name}"))
    err.print(f"deleted metric {name}", highlight=False)


@metrics_app.command("attach")
def metrics_attach(
    experiment: str, names: Annotated[list[str] | None, typer.Argument()] = None,
    url: UrlOption = DEFAULT_URL, token: TokenOption = None,
) -> None:
    """Make NAMES (in order; none: no metrics) the metrics EXPERIMENT's results compute."""
    client = registry_client(url, token)
    print_json(remote(lambda: client.call("PUT", f"/api/v1/experiments/{experiment}/metrics",
                                          json={"metrics": names or []}).json()))
