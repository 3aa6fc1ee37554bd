"""The ``splitlab`` command: the composition root that wires the pieces together.

Each area's commands live in a module of this package; this module registers them.
"""

from __future__ import annotations

from splitlab.cli import (
    analysis,
    assign,
    entities,
    events,
    experiments,
    keys,
    results,
    schemas,
    serve,
    simulate,
)
from splitlab.cli.common import app

app.command("assign")(assign.assign_command)
app.command("serve")(serve.serve_command)
app.command("client-keys")(serve.client_keys_command)
app.add_typer(keys.keys_app, name="keys")
app.add_typer(experiments.experiments_app, name="experiments")
app.add_typer(entities.layers_app, name="layers")
app.add_typer(entities.holdouts_app, name="holdouts")
app.add_typer(events.events_app, name="events")
app.add_typer(schemas.schemas_app, name="schemas")
app.command("simulate")(simulate.simulate_command)
app.command("materialize")(analysis.materialize_command)
app.command("analyze")(analysis.analyze_command)
app.add_typer(results.results_app, name="results")
app.add_typer(results.metrics_app, name="metrics")

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``splitlab`` console script."""
    app()
