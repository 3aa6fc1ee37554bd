"""The ``splitlab`` command: the composition root that wires the pieces together.

Each area's commands live in a module of this package; this module registers them.
"""

from __future__ import annotations

from splitlab.cli import analysis, assign, events, experiments, keys, serve, simulate
from splitlab.cli.common import app

app.command("assign")(assign.assign_command)
app.command("serve")(serve.serve_command)
app.command("client-keys")(serve.client_keys_command)
app.add_typer(keys.keys_app, name="keys")
app.add_typer(experiments.experiments_app, name="experiments")
app.add_typer(events.events_app, name="events")
app.command("simulate")(simulate.simulate_command)
app.command("materialize")(analysis.materialize_command)
app.command("analyze")(analysis.analyze_command)

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``splitlab`` console script."""
    app()
