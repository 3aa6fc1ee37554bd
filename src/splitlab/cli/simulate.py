"""``splitlab simulate``: traffic with known true effects, for demos, tests and benchmarks.

One simulator (:mod:`splitlab.simulate`, relative lifts), two ways: ``--output FILE`` writes
events fast (vectorised, millions of units, optional faults) for the analysis; ``--intake URL``
sends traffic through the SDK to a running intake, as an application would.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from splitlab.cli.common import err, fail, load_experiment, require_extra
from splitlab.core.model import Experiment
from splitlab.errors import ConfigError

if TYPE_CHECKING:
    from splitlab.simulate import Simulation


def experiment_for(config: Path | None, name: str, groups: str) -> Experiment:
    """The named experiment from ``config``, or an ad-hoc one (rate 1, mw-user) with ``groups``."""
    if config is not None:
        return load_experiment(config, name)
    try:
        return Experiment.from_config({
            "name": name, "groups": [g.strip() for g in groups.split(",") if g.strip()],
            "sample_rate": {"default": 1}, "user_identifier_type": "mw-user",
        })
    except ConfigError as error:
        fail(str(error))


def parse_pairs(values: list[str], option: str) -> dict[str, float]:
    """``group=number`` options as a mapping."""
    parsed: dict[str, float] = {}
    for text in values:
        group, _, number = text.partition("=")
        try:
            parsed[group] = float(number)
        except ValueError:
            fail(f"{option} must look like group=number, got {text!r}")
    return parsed


def simulate_command(
    users: Annotated[int, typer.Option("--users", "--units", help="Units to simulate.")] = 10_000,
    experiment: Annotated[str, typer.Option(help="Experiment name.")] = "simulated-experiment",
    config: Annotated[Path | None, typer.Option(help="Config JSON holding the experiment.")] = None,
    groups: Annotated[str, typer.Option(help="Groups without --config, control first.")] = (
        "control,treatment"
    ),
    output: Annotated[Path | None, typer.Option(help="Write events: .parquet or .jsonl.")] = None,
    intake: Annotated[str | None, typer.Option(help="Or send through the SDK to this intake "
                                                    "(…/v1/events).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    base_rate: Annotated[float, typer.Option(help="Conversion rate of control.")] = 0.10,
    lift: Annotated[list[str] | None, typer.Option(help="group=relative effect, e.g. b=1.05.")] = (
        None
    ),
    fault: Annotated[str | None, typer.Option(help="group=share of its enrollments lost "
                                                   "(--output only).")] = None,
    mixed_share: Annotated[float, typer.Option(help="Share of units seen in two groups "
                                                    "(--output only).")] = 0.0,
    site: Annotated[str | None, typer.Option(help="Site whose rate or split the SDK uses "
                                                  "(--intake; default: units spread over the "
                                                  "simulated sites, as in files).")] = None,
) -> None:
    """Simulate units with a known split and known true effects (optionally a logging fault)."""
    if (output is None) == (intake is None):
        fail("give exactly one of --output FILE or --intake URL")
    if intake is not None and (fault or mixed_share):
        fail("--fault and --mixed-share need --output (the SDK does not log faults)")
    exp = experiment_for(config, experiment, groups)
    lifts = parse_pairs(lift or [], "--lift")
    require_extra("analysis", "numpy", "pyarrow")
    from splitlab.simulate import Fault, Simulation

    lost = parse_pairs([fault], "--fault") if fault else {}
    try:
        spec = Simulation(
            exp, users, seed=seed, lifts=lifts, mixed_share=mixed_share,
            conversion=base_rate, fault=Fault(*next(iter(lost.items()))) if lost else None,
        )
    except ValueError as error:
        fail(str(error))
    if output is not None:
        write_file(spec, output)
    else:
        send_traffic(spec, site, str(intake))


def write_file(spec: Simulation, output: Path) -> None:
    """Write the simulated events to ``output`` (Parquet or JSON lines by extension)."""
    from splitlab.simulate import simulate, write_events

    try:
        count = write_events(simulate(spec), output)
    except ValueError as error:
        fail(str(error))
    err.print(f"wrote {count:,} events of {spec.experiment.name} to {output}", highlight=False)


def send_traffic(spec: Simulation, site: str | None, intake: str) -> None:
    """Send ``spec``'s traffic through the SDK to ``intake`` and print what was sent: from
    ``site``, or (without one) from every site the file simulation spreads units over, each
    through a client of its own, as each site's application servers would."""
    from splitlab.sdk import Client, HttpEventSender, StaticConfigSource
    from splitlab.simulate import send, sites_of

    config = StaticConfigSource([spec.experiment.to_config()])
    sender = HttpEventSender(intake)
    sites = [site] if site is not None else list(sites_of(spec.experiment)[0])
    clients: dict[str | None, Client] = {name: Client(config, sender, name) for name in sites}
    try:
        try:
            summary = send(clients, spec)
        except ValueError as error:
            fail(str(error))
        delivered = sender.flush(30.0)
    finally:
        sender.close()
    for group, tally in summary.groups.items():
        typer.echo(f"{group}\tunits={tally.units}\tconversions={tally.conversions}"
                   f"\ttrue_rate={tally.true_rate:g}")
    typer.echo(f"not-enrolled\tunits={summary.not_enrolled}")
    for name, units in summary.sites.items():
        typer.echo(f"site {name}\tenrolled={units}")
    if not delivered:
        fail("not every event was delivered within 30 s (see the log)", code=1)
