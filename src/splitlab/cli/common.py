"""What every ``splitlab`` command shares: the Typer app, consoles, one-line errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from splitlab.core.assignment import Identifier
from splitlab.core.model import Experiment, experiments_from_document
from splitlab.errors import ConfigError

app = typer.Typer(
    name="splitlab",
    help="Self-hostable experimentation: assignment, registry, event intake and analysis.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)
DataDirOption = Annotated[Path | None, typer.Option(
    "--data-dir", show_default=False,
    help="Data directory (SQLite files, keys, spool); default $SPLITLAB_DATA_DIR, else "
         ".splitlab/data.")]


@app.callback()
def splitlab_main() -> None:
    """Self-hostable experimentation: assignment, registry, event intake and analysis."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error and exit (2: bad input). ``message`` is plain text (square
    brackets in it are printed, not read as markup)."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def require_extra(extra: str, *modules: str) -> None:
    """Exit with a one-line error naming the extra to install when one of ``modules`` (what the
    command is about to import, from splitlab's optional ``extra``) is not installed."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        fail(f"this command needs {', '.join(missing)}, from the {extra} extra: "
             f"pip install 'splitlab[{extra}]'")


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


out = Console()


def print_json(value: object) -> None:
    """Indented JSON on stdout."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))
