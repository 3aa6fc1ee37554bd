"""``splitlab schemas list|check``: the event schemas the intake resolves ``$schema`` against."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from splitlab.cli.common import err, fail, out, print_json, require_extra
from splitlab.errors import ConfigError

if TYPE_CHECKING:
    from splitlab.intake.schemas import Checked

schemas_app = typer.Typer(help="See and check the event schemas the intake uses.",
                          no_args_is_help=True)
SchemasOption = Annotated[Path | None, typer.Option(
    "--schemas", envvar="SPLITLAB_SCHEMA_REPOSITORY",
    help="Schema repository checkout (or its jsonschema/ folder), looked in before the "
         "built-in schemas.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def checked(schemas: Path | None) -> list[Checked]:
    """Every schema of ``schemas`` and the built-in ones, each loaded and compiled."""
    require_extra("server", "orjson", "jsonschema_rs", "yaml")
    from splitlab.intake.schemas import SchemaRepository

    try:
        return SchemaRepository.with_directory(schemas).check()
    except ConfigError as error:
        fail(str(error))


def show(results: list[Checked], as_json: bool, errors_only: bool = False) -> None:
    """Print ``results`` as a table or JSON."""
    rows = [r for r in results if r.error or not errors_only]
    if as_json:
        print_json([{"id": r.id, "location": r.location, "title": r.title, "error": r.error}
                    for r in rows])
        return
    if not rows:
        return
    table = Table("$schema", "from", "status")
    for r in rows:
        table.add_row(r.id, r.location, f"[red]{r.error}[/]" if r.error else "ok")
    out.print(table)


@schemas_app.command("list")
def schemas_list(schemas: SchemasOption = None, as_json: JsonOption = False) -> None:
    """List every schema version the intake can resolve, and where each comes from."""
    show(checked(schemas), as_json)


@schemas_app.command("check")
def schemas_check(schemas: SchemasOption = None, as_json: JsonOption = False) -> None:
    """Load and compile every schema; exit 1 when one cannot be used (it says why)."""
    results = checked(schemas)
    bad = [r for r in results if r.error]
    show(results, as_json, errors_only=True)
    err.print(f"{len(results) - len(bad)} of {len(results)} schemas are usable", highlight=False)
    if bad:
        raise typer.Exit(1)
