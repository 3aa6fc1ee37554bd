"""``splitlab layers ...`` and ``splitlab holdouts ...``: the registry's layers and holdouts
from the command line, as ``splitlab experiments`` does for experiments."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from splitlab.cli.common import err, out, print_json
from splitlab.cli.experiments import (
    DEFAULT_URL,
    JsonOption,
    TokenOption,
    UrlOption,
    end_record,
    registry_client,
    remote,
    show_history,
    show_record,
    update_record,
)

DescriptionOption = Annotated[str | None, typer.Option(
    "--description", help="What the layer or holdout is for.")]


def _list(kind: str, url: str, token: str | None, as_json: bool) -> None:
    from rich.table import Table

    client = registry_client(url, token)
    rows = remote(lambda: client.rows(kind))
    if as_json:
        print_json(rows)
        return
    columns = ("name", "status", "percent", "end", "description") if kind == "holdout" else (
        "name", "status", "end", "description")
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    out.print(table)


def _create(kind: str, row: dict[str, Any], url: str, token: str | None, as_json: bool) -> None:
    client = registry_client(url, token)
    created = remote(lambda: client.create(kind, row))
    if as_json:
        print_json(created)
    err.print(f"created {kind} {created['name']}", highlight=False)


SetOption = Annotated[list[str], typer.Option(
    "--set", help="field=value (value as JSON), e.g. percent=2.5 or description=...")]

layers_app = typer.Typer(
    help="Layers of mutually exclusive experiments (100000 bins each): list, show (with the "
         "free ranges), create, update, end, history.", no_args_is_help=True)
holdouts_app = typer.Typer(
    help="Holdouts (a share of units kept out of the experiments that list them): list, show, "
         "create, update, end, history.", no_args_is_help=True)


def _add_changes(app: typer.Typer, kind: str) -> None:
    """The commands both apps share: list, update, end and history."""

    @app.command("list", help=f"Every {kind} with its status.")
    def listing(url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                as_json: JsonOption = False) -> None:
        _list(kind, url, token, as_json)

    @app.command("update", help=f"Change fields of a {kind} (guarded by its current ETag)"
                                + ("; its percent only while no started experiment lists it."
                                   if kind == "holdout" else "."))
    def update(name: str, assignments: SetOption, url: UrlOption = DEFAULT_URL,
               token: TokenOption = None, as_json: JsonOption = False) -> None:
        update_record(kind, name, assignments, url, token, as_json, f"{kind} {name}")

    @app.command("end", help=f"End a {kind} no experiment uses any more (it and its history "
                             "are kept).")
    def end(name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None,
            as_json: JsonOption = False) -> None:
        end_record(kind, name, url, token, as_json, f"{kind} {name}")

    @app.command("history", help=f"Every change of a {kind}: revision, when, who, what.")
    def history(name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                as_json: JsonOption = False) -> None:
        show_history(kind, name, url, token, as_json)


_add_changes(layers_app, "layer")
_add_changes(holdouts_app, "holdout")


@layers_app.command("show")
def layers_show(name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                as_json: JsonOption = False) -> None:
    """One layer: its row, the experiments holding ranges of it, and its free ranges."""
    record = show_record("layer", name, url, token, as_json)
    if as_json:
        return
    from rich.table import Table

    occupancy = record["occupancy"]
    table = Table("experiment", "range", "status", "start", "end",
                  title=f"{name}: {occupancy['bins']} bins")
    for holder in occupancy["experiments"]:
        low, high = holder["range"]
        table.add_row(holder["name"], f"[{low}, {high})", holder["status"],
                      (holder["start"] or "")[:19], (holder["end"] or "")[:19])
    out.print(table)
    free = ", ".join(f"[{low}, {high}) ({high - low} bins)" for low, high in occupancy["free"])
    out.print(f"free: {free or 'none'}", highlight=False)


@layers_app.command("create")
def layers_create(name: str, description: DescriptionOption = None,
                  url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                  as_json: JsonOption = False) -> None:
    """Create a layer (experiments then take ranges of it: layer: {name, bins})."""
    row = {"name": name} if description is None else {"name": name, "description": description}
    _create("layer", row, url, token, as_json)


@holdouts_app.command("show")
def holdouts_show(name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None,
                  as_json: JsonOption = False) -> None:
    """One holdout: its row, revision, status and ETag."""
    show_record("holdout", name, url, token, as_json)


@holdouts_app.command("create")
def holdouts_create(
    name: str,
    percent: Annotated[float, typer.Option(
        "--percent", help="Share of all units held out: more than 0, at most 100, 3 decimals.")],
    description: DescriptionOption = None, url: UrlOption = DEFAULT_URL,
    token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Create a holdout (experiments list it: holdouts: [{name}])."""
    row: dict[str, Any] = {"name": name, "percent": int(percent) if percent.is_integer()
                           else percent}
    if description is not None:
        row["description"] = description
    _create("holdout", row, url, token, as_json)
