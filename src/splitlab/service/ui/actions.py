"""The dashboard's changes: sign in and out, create and edit an experiment, launch and end it.

Every post is checked by :meth:`Sessions.check_post` (same origin, CSRF token) and every change
goes through the registry's own rules; a refusal is shown on the form, in words, with what to
do instead. A form shown again with its errors answers 200 (the refusal is the page's content,
in a ``role="alert"``): a 4xx document would be logged as a failed load by the browser.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from splitlab.core.model import IDENTIFIER_TYPES, format_time
from splitlab.errors import ConfigError, ConflictError, PreconditionFailedError
from splitlab.registry import views
from splitlab.registry.store import Record
from splitlab.service.ui import forms
from splitlab.service.ui.session import Form, read_form

if TYPE_CHECKING:
    from splitlab.service.ui.component import UiComponent

ACTOR = "dashboard"
"""Who the history names for a change made here (the admin token has no user name)."""


def _back_to(target: str) -> Response:
    return RedirectResponse(target, 303)


def _safe_next(target: str) -> str:
    return target if target.startswith("/ui") and not target.startswith("//") else "/ui"


async def sign_in_form(ui: UiComponent, request: Request) -> Response:
    next_page = _safe_next(request.query_params.get("next", "/ui"))
    return ui.render(request, "sign_in.html", next_page=next_page, problem="")


async def sign_in(ui: UiComponent, request: Request) -> Response:
    """Exchange the admin token for a session cookie (the token is never sent back)."""
    form = await read_form(request)
    ui.sessions.check_post(request, form)
    next_page = _safe_next(form.get("next", "/ui"))
    if not ui.sessions.token_matches(form.get("token", "")):
        return ui.render(request, "sign_in.html", next_page=next_page,
                         problem="That is not the admin token. Find it with `cat "
                                 "<data dir>/admin-token` or in SPLITLAB_ADMIN_TOKEN.")
    response = _back_to(next_page)
    ui.sessions.sign_in(request, response)
    return response


async def sign_out(ui: UiComponent, request: Request) -> Response:
    ui.sessions.check_post(request, await read_form(request))
    response = _back_to("/ui")
    ui.sessions.sign_out(response)
    return response


def _form_page(ui: UiComponent, request: Request, state: forms.FormState,
               record: Record | None, **extra: Any) -> Response:
    return ui.render(request, "form.html", state=state, record=record,
                     identifier_types=IDENTIFIER_TYPES,
                     catalog=[m.name for m in ui.results().metric_definitions()], **extra)


async def new_form(ui: UiComponent, request: Request) -> Response:
    values = forms.values_of({})
    return _form_page(ui, request, forms.FormState(values), None)


def _metrics(form: Form) -> tuple[str, ...]:
    return tuple(form.getlist("metrics"))


async def create(ui: UiComponent, request: Request) -> Response:
    """Create the row the form describes, validated by the registry."""
    form = await read_form(request)
    ui.sessions.check_post(request, form)
    metrics = _metrics(form)
    if forms.is_table_edit(form.get("op", "")):
        return _form_page(ui, request, forms.table_edit(form, form["op"], metrics), None)
    try:
        row = forms.row_of(form)
        record: Record = await ui.call(ui.registry.create, "experiment", row, ACTOR)
    except ConfigError as error:
        return _form_page(ui, request, forms.failed(form, error, metrics), None)
    except ConflictError as error:
        state = forms.FormState(form, {"name": f"{error} Choose another name."}, metrics=metrics)
        return _form_page(ui, request, state, None)
    ui.after_write()
    if metrics:
        await ui.call(ui.results().set_experiment_metrics, record.name, list(metrics))
    return _back_to(f"/ui/experiments/{quote(record.name)}")


async def edit_form(ui: UiComponent, request: Request) -> Response:
    record: Record = await ui.call(ui.registry.get, "experiment", request.path_params["name"])
    metrics = tuple(await ui.call(ui.results().experiment_metrics, record.name))
    state = forms.FormState(forms.values_of(record.row), metrics=metrics)
    return _form_page(ui, request, state, record, etag=record.etag)


def _explain(error: ConflictError, record: Record) -> str:
    """A 409 in words, with the way forward (the registry's own text names API fields)."""
    text = str(error)
    if "phase_index" not in text or "cannot change within a phase" not in text:
        return f"Not saved: {text}"
    next_phase = int(record.row.get("phase_index", 0)) + 1
    return ("Not saved: changing the groups, the identifier type or the start of a running "
            "experiment reshuffles units between groups. To change them, start a new phase: "
            f"tick \u201cStart a new phase\u201d below and save. Phase {next_phase} then starts "
            "now with the new settings and is analysed on its own.")


async def save(ui: UiComponent, request: Request) -> Response:
    """Apply the edited form (``If-Match``: the ETag the form was opened with)."""
    form = await read_form(request)
    ui.sessions.check_post(request, form)
    metrics = _metrics(form)
    name = request.path_params["name"]
    record: Record = await ui.call(ui.registry.get, "experiment", name)
    etag = form.get("etag", "")
    if forms.is_table_edit(form.get("op", "")):
        state = forms.table_edit(form, form["op"], metrics)
        return _form_page(ui, request, state, record, etag=etag,
                          offer_phase=form.get("offer_phase") == "yes")
    try:
        row = forms.patch_of(record.row, forms.row_of(form))
        if form.get("new_phase") == "yes":
            row["phase_index"] = int(record.row.get("phase_index", 0)) + 1
            row["start"] = format_time(datetime.now(UTC))
        if {k: v for k, v in row.items() if record.row.get(k) != v}:
            record = await ui.call(ui.registry.update, "experiment", name, row, etag, ACTOR)
            ui.after_write()
    except ConfigError as error:
        return _form_page(ui, request, forms.failed(form, error, metrics), record, etag=etag)
    except PreconditionFailedError:
        state = forms.FormState(form, problem=(
            "Someone changed this experiment after you opened the form. Your edits are still "
            "below; open the form again to see the current values, then apply them again."),
            metrics=metrics)
        return _form_page(ui, request, state, record, etag=etag)
    except ConflictError as error:
        state = (forms.refused_traffic(form, error, metrics)
                 or forms.FormState(form, problem=_explain(error, record), metrics=metrics))
        return _form_page(ui, request, state, record, etag=etag, offer_phase=True)
    await ui.call(ui.results().set_experiment_metrics, record.name, list(metrics))
    return _back_to(f"/ui/experiments/{quote(record.name)}")


async def confirm_end(ui: UiComponent, request: Request) -> Response:
    record: Record = await ui.call(ui.registry.get, "experiment", request.path_params["name"])
    return ui.render(request, "confirm.html", record=record, action="end",
                     status=views.status(record.row, datetime.now(UTC)), problem="")


async def confirm_launch(ui: UiComponent, request: Request) -> Response:
    record: Record = await ui.call(ui.registry.get, "experiment", request.path_params["name"])
    return ui.render(request, "confirm.html", record=record, action="launch",
                     status=views.status(record.row, datetime.now(UTC)), problem="")


async def end(ui: UiComponent, request: Request) -> Response:
    """End the experiment now (the registry refuses one not started or already ended)."""
    form = await read_form(request)
    ui.sessions.check_post(request, form)
    name = request.path_params["name"]
    try:
        await ui.call(ui.registry.end, "experiment", name, form.get("etag") or None, ACTOR)
    except (ConflictError, PreconditionFailedError) as error:
        record: Record = await ui.call(ui.registry.get, "experiment", name)
        return ui.render(request, "confirm.html", record=record, action="end",
                         status=views.status(record.row, datetime.now(UTC)), problem=str(error))
    ui.after_write()
    return _back_to(f"/ui/experiments/{quote(name)}")


async def launch(ui: UiComponent, request: Request) -> Response:
    """Start a scheduled experiment now (its start becomes now)."""
    form = await read_form(request)
    ui.sessions.check_post(request, form)
    name = request.path_params["name"]
    try:
        await ui.call(ui.registry.update, "experiment", name,
                      {"start": format_time(datetime.now(UTC))}, form.get("etag", ""), ACTOR)
    except (ConfigError, ConflictError, PreconditionFailedError) as error:
        record: Record = await ui.call(ui.registry.get, "experiment", name)
        return ui.render(request, "confirm.html", record=record, action="launch",
                         status=views.status(record.row, datetime.now(UTC)), problem=str(error))
    ui.after_write()
    return _back_to(f"/ui/experiments/{quote(name)}")
