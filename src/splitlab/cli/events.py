"""``splitlab events export|tail``: reading back the event log the intake stored."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from splitlab.cli.common import DataDirOption, err, fail, require_extra
from splitlab.datadir import ENV as DATA_DIR_ENV
from splitlab.datadir import data_dir as find_data_dir
from splitlab.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from splitlab.intake.export import EventReader

events_app = typer.Typer(help="Read back the events the intake stored.", no_args_is_help=True)
Source = Annotated[str, typer.Option(
    envvar="SPLITLAB_EVENTS_SINK", help="Where the events are: sqlite or postgresql.")]
DatabaseUrl = Annotated[str | None, typer.Option(
    envvar="SPLITLAB_DATABASE_URL", help="PostgreSQL URL (with --source postgresql).")]
StreamOption = Annotated[str | None, typer.Option(help="Only events of this stream.")]
TablePrefix = Annotated[str, typer.Option(
    envvar="SPLITLAB_TABLE_PREFIX", help="PostgreSQL table prefix (table <prefix>events).")]


def event_reader(
    data_dir: Path | None, source: str, database_url: str | None, table_prefix: str
) -> EventReader:
    """The reader for ``--source``; exits with a one-line error when it cannot be opened."""
    from splitlab.intake.export import open_reader

    if source not in ("sqlite", "postgresql"):
        fail(f"--source must be sqlite or postgresql, not {source!r}")
    if source == "postgresql" and not database_url:
        fail("--source postgresql needs --database-url or SPLITLAB_DATABASE_URL")
    try:
        return open_reader(find_data_dir(data_dir),
                           database_url if source == "postgresql" else None, table_prefix)
    except NotFoundError as error:
        fail(f"{error}; if the service keeps its data elsewhere, give --data-dir or set "
             f"{DATA_DIR_ENV}")
    except Exception as error:  # a driver's connection error: say it in one line
        fail(f"cannot open the event log: {error}")


@events_app.command("export")
def events_export(
    output: Annotated[Path, typer.Option(help="File to write (.jsonl or .parquet).")],
    stream: StreamOption = None,
    since: Annotated[str | None, typer.Option(help="Received at or after (ISO 8601).")] = None,
    format: Annotated[str | None, typer.Option(help="jsonl or parquet (default: by extension).")
                      ] = None,
    data_dir: DataDirOption = None,
    source: Source = "sqlite",
    database_url: DatabaseUrl = None,
    table_prefix: TablePrefix = "",
) -> None:
    """Write stored events to a JSON-lines or Parquet file."""
    require_extra("server", "orjson")
    from splitlab.intake.export import export as export_events
    from splitlab.intake.export import format_for

    try:
        if format_for(output, format) == "parquet":
            require_extra("analysis", "pyarrow")
    except ConfigError as error:
        fail(str(error))
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
    data_dir: DataDirOption = None,
    source: Source = "sqlite",
    database_url: DatabaseUrl = None,
    table_prefix: TablePrefix = "",
) -> None:
    """Print the newest stored events as JSON lines (and follow new ones with -f)."""
    require_extra("server", "orjson")
    from splitlab.intake.export import tail as tail_events

    reader = event_reader(data_dir, source, database_url, table_prefix)
    try:
        for event in tail_events(reader, stream, lines, follow):
            typer.echo(event.body.decode())
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
