"""``splitlab experiments ...``: the registry's admin API from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from splitlab.registry.client import RegistryClient

from splitlab.cli.common import err, fail, out, print_json, require_extra
from splitlab.datadir import ADMIN_TOKEN_FILE, data_dir

T = TypeVar("T")

experiments_app = typer.Typer(
    help="List, show, create, update, end and import experiments on a running server.",
    no_args_is_help=True,
)

UrlOption = Annotated[str, typer.Option(
    "--url", envvar="SPLITLAB_URL", help="Server URL.")]
TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar="SPLITLAB_ADMIN_TOKEN", help="Admin token (for writes).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DEFAULT_URL = "http://127.0.0.1:8080"


def registry_client(url: str, token: str | None) -> RegistryClient:
    """A client of the server at ``url`` acting as the current OS user."""
    import getpass

    require_extra("server", "httpx", "yaml")
    from splitlab.registry.client import RegistryClient

    return RegistryClient(url, token, actor=getpass.getuser())


def token_hint() -> str:
    """How to pass the admin token, and where a local ``splitlab serve`` keeps it."""
    path = data_dir() / ADMIN_TOKEN_FILE
    return (". Writes need the server's admin token: pass --token TOKEN or set "
            "SPLITLAB_ADMIN_TOKEN (a server started by `splitlab serve` without that variable "
            f"keeps it in DATA_DIR/{ADMIN_TOKEN_FILE}; run from here, that is "
            f"--token \"$(cat {path})\")")


def remote(action: Callable[[], T]) -> T:
    """Run a client call; a refusal or an unreachable server becomes a one-line error (a 401
    says how to pass the admin token)."""
    from splitlab.errors import RemoteError, SplitlabError

    try:
        return action()
    except RemoteError as error:
        fail(f"{error}{token_hint() if error.status == 401 else ''}", 1)
    except SplitlabError as error:
        fail(str(error), 1)


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
    show_record("experiment", name, url, token, as_json)


def show_record(kind: str, name: str, url: str, token: str | None,
                as_json: bool) -> dict[str, Any]:
    """Print one record (``--json``: with its ETag) and return it."""
    client = registry_client(url, token)
    record, etag = remote(lambda: client.show(kind, name))
    if as_json:
        print_json({**record, "etag": etag})
        return record
    from rich.table import Table

    table = Table("field", "value", title=f"{name} (revision {record['revision']}, "
                                          f"{record['status']}, ETag {etag})")
    for field, value in record["row"].items():
        table.add_row(field, json.dumps(value, ensure_ascii=False))
    out.print(table)
    return record


@experiments_app.command("create")
def experiments_create(file: Annotated[Path, typer.Argument(help="A YAML or JSON row.")],
                       url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                       as_json: JsonOption = False) -> None:
    """Create an experiment from a file holding one row."""
    require_extra("server", "yaml")
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
    update_record("experiment", name, assignments, url, token, as_json, name)


@experiments_app.command("end")
def experiments_end(name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                    as_json: JsonOption = False) -> None:
    """End a running experiment now (it and its history are kept)."""
    end_record("experiment", name, url, token, as_json, name)


@experiments_app.command("history")
def experiments_history(name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                        as_json: JsonOption = False) -> None:
    """Every change of an experiment: revision, when, who, what."""
    show_history("experiment", name, url, token, as_json)


def update_record(kind: str, name: str, assignments: list[str], url: str, token: str | None,
                  as_json: bool, label: str) -> None:
    """Patch a record with ``field=value`` assignments and say so (``label`` names it)."""
    patch = parse_assignments(assignments)
    client = registry_client(url, token)
    updated = remote(lambda: client.update(kind, name, patch))
    if as_json:
        print_json(updated)
    err.print(f"updated {label} (revision {updated['revision']})", highlight=False)


def end_record(kind: str, name: str, url: str, token: str | None, as_json: bool,
               label: str) -> None:
    """End a record now and say when (``label`` names it)."""
    client = registry_client(url, token)
    ended = remote(lambda: client.end(kind, name))
    if as_json:
        print_json(ended)
    err.print(f"ended {label} at {ended['row']['end']}", highlight=False)


def show_history(kind: str, name: str, url: str, token: str | None, as_json: bool) -> None:
    """Print every change of a record, oldest first."""
    from rich.table import Table

    client = registry_client(url, token)
    entries = remote(lambda: client.history(kind, name))
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
    file: Annotated[Path, typer.Argument(
        help="YAML/JSON: rows or {experiments, instruments, layers, holdouts}.")],
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Create or update experiments, instruments, layers and holdouts from a file (idempotent;
    layers and holdouts first)."""
    require_extra("server", "httpx", "yaml")
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
    """Every experiment, instrument, layer and holdout as a file that `import` takes back."""
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

