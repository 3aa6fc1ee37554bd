"""The dashboard's read pages: the experiments list, an experiment's page (and the fragment its
live refresh fetches), and the assignment debugger."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from splitlab.core.model import IDENTIFIER_TYPES, Experiment, window_status
from splitlab.errors import ConfigError
from splitlab.registry import views
from splitlab.registry.store import Record
from splitlab.service.ui import charts, content, debugger
from splitlab.service.ui.session import read_form

if TYPE_CHECKING:
    from splitlab.service.ui.component import UiComponent

HISTORY_RUNS = 200
"""Results runs the units chart draws (newest)."""


async def experiments(ui: UiComponent, request: Request) -> Response:
    """``GET /ui``: every experiment, filtered by ``status`` and ``q`` (name contains)."""
    status = request.query_params.get("status", "")
    search = request.query_params.get("q", "")
    if status not in content.STATUSES:
        status = ""
    records: tuple[Record, ...] = await ui.call(ui.view.records)
    latest = await ui.call(ui.latest_runs.of, ui.results(), [r.name for r in records])
    rows = content.list_rows(records, latest, datetime.now(UTC), status, search)
    return ui.render(request, "list.html", rows=rows, status=status, search=search,
                     statuses=content.STATUSES, total=len(records))


def _results_context(ui: UiComponent, record: Record) -> dict[str, Any]:
    runs = ui.results().history(record.name, HISTORY_RUNS, 0)
    latest = runs[0] if runs else None
    groups = list(record.row.get("groups", []))
    report = latest.report if latest is not None else {}
    effect_rows = content.effect_rows(report)
    return {
        "run": latest, "report": report, "groups": groups,
        "health": content.health(latest), "checks": latest.health if latest else [],
        "units_chart": content.units_chart(runs, groups),
        "effects_chart": (charts.effects(effect_rows, "Relative effect per treatment")
                          if effect_rows else None),
        "by_site": report.get("by_site", {}),
    }


async def experiment(ui: UiComponent, request: Request) -> Response:
    """``GET /ui/experiments/{name}``: configuration, results, health, history, QA links."""
    name = request.path_params["name"]
    record: Record = await ui.call(ui.registry.get, "experiment", name)
    history = await ui.call(ui.registry.history, "experiment", name)
    context = await ui.call(_results_context, ui, record)
    site = content.qa_site(record.row)
    return ui.render(
        request, "experiment.html", record=record,
        status=views.status(record.row, datetime.now(UTC)),
        row_json=json.dumps(record.row, indent=2, sort_keys=True, ensure_ascii=False),
        revisions=content.revisions(history), traffic=content.traffic(record.row),
        split=content.split_view(record.row),
        qa_site=site, qa=content.qa_links(record.row, ui.registry.sites.domain(site)),
        **context)


async def results_fragment(ui: UiComponent, request: Request) -> Response:
    """``GET /ui/experiments/{name}/results[?since=<run id>]``: the results section alone (live
    refresh); 204 when the newest run is still ``since``."""
    record: Record = await ui.call(ui.registry.get, "experiment", request.path_params["name"])
    since = request.query_params.get("since")
    if since is not None:
        latest = await ui.call(ui.results().latest, record.name)
        if str(latest.id if latest is not None else "") == since:
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
    context = await ui.call(_results_context, ui, record)
    return ui.render(request, "results.html", record=record, **context)


async def debug(ui: UiComponent, request: Request) -> Response:
    """``GET|POST /ui/debug``: an identifier (posted, so it is in no URL), a site and optional
    targeting attributes in, every experiment's answer and reason out (those not ended:
    scheduled ones answer ``inactive``); nothing is stored."""
    values = {"identifier": "", "site": "", "identifier_type": "", "attributes": ""}
    found = None
    problem = ""
    if request.method == "POST":
        form = await read_form(request)
        ui.sessions.check_post(request, form)
        values = {k: form.get(k, "").strip() for k in values}
        try:
            attributes = debugger.parse_attributes(values["attributes"])
        except ConfigError as error:
            attributes, problem = {}, f"Attributes {error.reason}."
        if not values["identifier"]:
            problem = "Enter an identifier."
        elif values["identifier_type"] not in ("", *IDENTIFIER_TYPES):
            problem = f"Identifier type must be one of {', '.join(IDENTIFIER_TYPES)}."
        elif not problem:
            experiments: tuple[Experiment, ...] = await ui.call(ui.view.experiments)
            now = datetime.now(UTC)
            current = [e for e in experiments if window_status(e.start, e.end, now) != "ended"]
            found = debugger.answers(current, values["identifier"], values["site"] or None,
                                     values["identifier_type"] or None, attributes=attributes,
                                     now=now)
    return ui.render(request, "debug.html", values=values, answers=found, problem=problem,
                     identifier_types=IDENTIFIER_TYPES)
