"""The ``splitlab`` command: the composition root that wires the pieces together."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

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

if TYPE_CHECKING:
    from splitlab.registry.client import RegistryClient

T = TypeVar("T")

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
    """Start the service on the embedded default (SQLite; no other server needed).

    SIGTERM or Ctrl-C stop it gracefully (requests in flight get up to 10 s to finish).
    """
    import os
    import signal

    import uvicorn

    from splitlab.service.api_support import ensure_admin_token

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["SPLITLAB_DATA_DIR"] = str(data_dir)
    if demo:
        os.environ["SPLITLAB_DEMO"] = "1"
    _, token_file = ensure_admin_token(os.environ.get("SPLITLAB_ADMIN_TOKEN"), data_dir)
    database = "PostgreSQL" if os.environ.get("SPLITLAB_DATABASE_URL") else f"SQLite in {data_dir}"
    where = f"http://{host}:{port}"
    token = "the value of SPLITLAB_ADMIN_TOKEN" if token_file is None else f"cat {token_file}"
    err.print(f"splitlab listening on {where} (registry: {database})\n"
              f"  config API  {where}/api/v1/experiments\n  events      {where}/v1/events\n"
              f"  API docs    {where}/docs\n"
              f"  admin token {token}", highlight=False, soft_wrap=True)
    # uvicorn stops gracefully on SIGTERM, then re-raises the signal: exit 0 when it does
    signal.signal(signal.SIGTERM, lambda _number, _frame: sys.exit(0))
    uvicorn.run(
        "splitlab.service.app:app_from_env", factory=True, host=host, port=port,
        workers=workers, log_level="warning", access_log=False, timeout_graceful_shutdown=10,
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
TablePrefix = Annotated[str, typer.Option(
    envvar="SPLITLAB_TABLE_PREFIX", help="PostgreSQL table prefix (table <prefix>events).")]


def event_reader(
    data_dir: Path, source: str, database_url: str | None, table_prefix: str
) -> EventReader:
    """The reader for ``--source``; exits with a one-line error when it cannot be opened."""
    if source not in ("sqlite", "postgresql"):
        fail(f"--source must be sqlite or postgresql, not {source!r}")
    if source == "postgresql" and not database_url:
        fail("--source postgresql needs --database-url or SPLITLAB_DATABASE_URL")
    try:
        return open_reader(data_dir, database_url if source == "postgresql" else None,
                           table_prefix)
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
    table_prefix: TablePrefix = "",
) -> None:
    """Write stored events to a JSON-lines or Parquet file."""
    reader = event_reader(data_dir, source, database_url, table_prefix)
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
    table_prefix: TablePrefix = "",
) -> None:
    """Print the newest stored events as JSON lines (and follow new ones with -f)."""
    reader = event_reader(data_dir, source, database_url, table_prefix)
    try:
        for event in tail_events(reader, stream, lines, follow):
            typer.echo(event.body.decode())
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
# ---- splitlab experiments ...: the registry's admin API from the command line ----------------

experiments_app = typer.Typer(
    help="List, show, create, update, end and import experiments on a running server.",
    no_args_is_help=True,
)
app.add_typer(experiments_app, name="experiments")
out = Console()

UrlOption = Annotated[str, typer.Option(
    "--url", envvar="SPLITLAB_URL", help="Server URL.")]
TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar="SPLITLAB_ADMIN_TOKEN", help="Admin token (for writes).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DEFAULT_URL = "http://127.0.0.1:8080"


def registry_client(url: str, token: str | None) -> RegistryClient:
    """A client of the server at ``url`` acting as the current OS user."""
    import getpass

    from splitlab.registry.client import RegistryClient

    return RegistryClient(url, token, actor=getpass.getuser())


def remote(action: Callable[[], T]) -> T:
    """Run a client call; a refusal or an unreachable server becomes a one-line error."""
    from splitlab.errors import SplitlabError

    try:
        return action()
    except SplitlabError as error:
        fail(str(error), 1)


def print_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def parse_assignments(pairs: list[str]) -> dict[str, object]:
    """``field=value`` pairs; values are JSON when they parse as JSON, else plain strings."""
    patch: dict[str, object] = {}
    for pair in pairs:
        field, sep, text = pair.partition("=")
        if not sep or not field:
            fail(f"--set expects field=value, got {pair!r}")
        try:
            patch[field] = json.loads(text)
        except json.JSONDecodeError:
            patch[field] = text
    return patch


@experiments_app.command("list")
def experiments_list(url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                     as_json: JsonOption = False) -> None:
    """Every experiment with its status, groups, rate and dates."""
    from rich.table import Table

    client = registry_client(url, token)
    rows = remote(lambda: client.rows("experiment"))
    if as_json:
        print_json(rows)
        return
    table = Table("name", "status", "groups", "rate", "unit", "start", "end", "phase")
    for row in rows:
        table.add_row(row["name"], row["status"], " ".join(row["groups"]),
                      str(row["sample_rate"]["default"]), row["user_identifier_type"],
                      (row["start"] or "")[:10], (row["end"] or "")[:10], str(row["phase_index"]))
    out.print(table)


@experiments_app.command("show")
def experiments_show(name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                     as_json: JsonOption = False) -> None:
    """One experiment: its row, revision, status and ETag."""
    client = registry_client(url, token)
    record, etag = remote(lambda: client.show("experiment", name))
    if as_json:
        print_json({**record, "etag": etag})
        return
    from rich.table import Table

    table = Table("field", "value", title=f"{name} (revision {record['revision']}, "
                                          f"{record['status']}, ETag {etag})")
    for field, value in record["row"].items():
        table.add_row(field, json.dumps(value, ensure_ascii=False))
    out.print(table)


@experiments_app.command("create")
def experiments_create(file: Annotated[Path, typer.Argument(help="A YAML or JSON row.")],
                       url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                       as_json: JsonOption = False) -> None:
    """Create an experiment from a file holding one row."""
    import yaml

    try:
        row = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        fail(f"cannot read a row from {file}: {error}")
    client = registry_client(url, token)
    created = remote(lambda: client.create("experiment", row))
    if as_json:
        print_json(created)
    err.print(f"created {created['name']} (revision {created['revision']})", highlight=False)


@experiments_app.command("update")
def experiments_update(
    name: str,
    assignments: Annotated[list[str], typer.Option(
        "--set", help="field=value (value as JSON, e.g. groups='[\"a\",\"b\"]').")],
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Change fields of an experiment (guarded by its current ETag)."""
    patch = parse_assignments(assignments)
    client = registry_client(url, token)
    updated = remote(lambda: client.update("experiment", name, patch))
    if as_json:
        print_json(updated)
    err.print(f"updated {name} (revision {updated['revision']})", highlight=False)


@experiments_app.command("end")
def experiments_end(name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                    as_json: JsonOption = False) -> None:
    """End a running experiment now (it and its history are kept)."""
    client = registry_client(url, token)
    ended = remote(lambda: client.end("experiment", name))
    if as_json:
        print_json(ended)
    err.print(f"ended {name} at {ended['row']['end']}", highlight=False)


@experiments_app.command("history")
def experiments_history(name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                        as_json: JsonOption = False) -> None:
    """Every change of an experiment: revision, when, who, what."""
    from rich.table import Table

    client = registry_client(url, token)
    entries = remote(lambda: client.history("experiment", name))
    if as_json:
        print_json(entries)
        return
    table = Table("revision", "at", "actor", "action", "changes")
    for entry in entries:
        changes = "(the first revision)" if entry["action"] == "create" else "; ".join(
            f"{field}: {json.dumps(old)} → {json.dumps(new)}"
            for field, (old, new) in entry["changes"].items())
        table.add_row(str(entry["revision"]), entry["at"][:19], entry["actor"], entry["action"],
                      changes)
    out.print(table)


@experiments_app.command("import")
def experiments_import(
    file: Annotated[Path, typer.Argument(help="YAML/JSON: rows or {experiments, instruments}.")],
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Create or update experiments and instruments from a file (idempotent)."""
    from splitlab.registry.client import load_document

    document = remote(lambda: load_document(file))
    client = registry_client(url, token)
    results = remote(lambda: client.import_document(document))
    if as_json:
        print_json([{"kind": r.kind, "name": r.name, "action": r.action} for r in results])
        return
    for result in results:
        typer.echo(f"{result.action}\t{result.kind}\t{result.name}")


@experiments_app.command("export")
def experiments_export(
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    yaml_format: Annotated[bool, typer.Option("--yaml", help="YAML instead of JSON.")] = False,
    url: UrlOption = DEFAULT_URL, token: TokenOption = None,
) -> None:
    """Every experiment and instrument as a file that `import` takes back."""
    client = registry_client(url, token)
    document = remote(client.export_document)
    if yaml_format:
        import yaml

        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    else:
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


# --- client delivery (signed payloads) ---------------------------------------------------------


@app.command("client-keys")
def client_keys_command(
    data_dir: Annotated[Path, typer.Option(help="Data directory of the service.")] = Path("data"),
) -> None:
    """Print the JWK set of the client payload signing key (creating the key pair if absent).

    The private key stays in DATA_DIR/client-signing-key.pem (mode 0600); an application server
    that signs payloads itself loads that file with PayloadSigner.from_pem.
    """
    from splitlab.sdk.signing import KEY_FILE, load_or_create_signer

    signer = load_or_create_signer(data_dir.resolve())
    err.print(f"private key: {(data_dir / KEY_FILE).resolve()}")
    typer.echo(json.dumps(signer.jwks(), indent=2))


# -- simulate (SDK issue) ---------------------------------------------------------------------


@app.command("simulate")
def simulate_command(
    users: Annotated[int, typer.Option(help="Simulated units.")] = 10_000,
    config: Annotated[Path, typer.Option(help="Config JSON: a list of rows or {experiments}.")] = (
        Path("experiments.json")
    ),
    experiment: Annotated[str, typer.Option(help="Experiment name.")] = "",
    intake: Annotated[str | None, typer.Option(help="Send to this intake (…/v1/events).")] = None,
    out: Annotated[Path | None, typer.Option(help="Or append events to this JSONL file.")] = None,
    base_rate: Annotated[float, typer.Option(help="Conversion rate of control.")] = 0.10,
    lift: Annotated[float, typer.Option(help="True absolute lift of the other groups.")] = 0.02,
    seed: Annotated[int, typer.Option(help="Seed of the conversion draws.")] = 0,
    site: Annotated[str | None, typer.Option(help="Site (e.g. enwiki) for per-site rates.")] = None,
) -> None:
    """Send realistic traffic with a known true effect through the SDK."""
    from splitlab.sdk import Client, HttpEventSender, StaticConfigSource
    from splitlab.sdk.events import EventSender
    from splitlab.simulate import JsonLinesEventSender, Scenario, simulate

    if not experiment:
        fail("--experiment is required")
    exp = load_experiment(config, experiment)
    try:
        scenario = Scenario(experiment, users, base_rate, lift, seed)
        if intake is not None and out is None:
            sender: EventSender = HttpEventSender(intake)
        elif out is not None and intake is None:
            sender = JsonLinesEventSender(out)
        else:
            fail("give exactly one of --intake URL or --out FILE")
    except (ValueError, TypeError, OSError) as error:
        fail(str(error))
    with Client(StaticConfigSource([exp.to_config()]), sender, site) as client:
        try:
            summary = simulate(client, scenario)
        except ValueError as error:
            fail(str(error))
        delivered = client.flush(30.0)
    for group, tally in summary.groups.items():
        typer.echo(f"{group}\tunits={tally.units}\tconversions={tally.conversions}"
                   f"\ttrue_rate={tally.true_rate:g}")
    typer.echo(f"not-enrolled\tunits={summary.not_enrolled}")
    if not delivered:
        fail("not every event was delivered within 30 s (see the log)", code=1)


def main() -> None:
    """Entry point of the ``splitlab`` console script."""
    app()


if __name__ == "__main__":
    main()
