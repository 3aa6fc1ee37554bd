"""The dashboard area of the service: its routes, templates, static files and access rules.

Reading is open like the config API unless ``SPLITLAB_UI_REQUIRE_TOKEN=1``; changing needs a
session (see :mod:`splitlab.service.ui.session`). Every page is rendered on the server and sent
with a strict Content-Security-Policy (scripts, styles and images from the server's own origin
only), so nothing a page loads leaves it.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from splitlab.errors import BadRequestError, ForbiddenError, NotFoundError
from splitlab.registry.store import Registry
from splitlab.results.store import ResultsStore
from splitlab.service.api_support import ensure_admin_token
from splitlab.service.settings import Settings
from splitlab.service.ui.cache import LatestRuns, RegistryView
from splitlab.service.ui.session import Sessions

HERE = Path(__file__).parent
STATIC = {path.name: path for path in (HERE / "static").iterdir() if path.is_file()}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
TITLES = {400: "Bad request", 404: "Not found"}
Page = Callable[["UiComponent", Request], Awaitable[Response]]
RegistryRef = Callable[[], Registry | None]


class UiComponent:
    """The dashboard (a :class:`~splitlab.service.app.Component`).

    ``registry`` returns the registry area's open store; ``after_write`` is called after the
    dashboard changed a row (the registry area forgets its cached documents and tells the other
    worker processes).
    """

    def __init__(self, settings: Settings, registry: RegistryRef,
                 after_write: Callable[[], None]) -> None:
        self.settings = settings
        self.registry_ref = registry
        self.after_write = after_write
        self.token = ""
        self.sessions = Sessions(lambda: self.token)
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(),
            trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["urlpart"] = lambda text: quote(str(text), safe="")
        self.view = RegistryView(lambda: self.registry)
        self.latest_runs = LatestRuns()
        self._results: ResultsStore | None = None

    async def start(self) -> None:
        """Load the admin token (the key of sessions and CSRF tokens)."""
        self.token, _ = ensure_admin_token(self.settings.admin_token, self.settings.data_dir)

    async def stop(self) -> None:
        """Nothing to release."""

    @property
    def registry(self) -> Registry:
        """The open registry."""
        registry = self.registry_ref()
        if registry is None:
            raise RuntimeError("the registry has not started")
        return registry

    def results(self) -> ResultsStore:
        """The results store (in the registry's database)."""
        registry = self.registry
        store = self._results
        if store is None or store.engine is not registry.engine:
            store = self._results = ResultsStore(registry.engine, registry.tables.prefix)
        return store

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking store call off the event loop."""
        return await run_in_threadpool(function, *args)

    def render(self, request: Request, template: str, code: int = 200,
               **context: Any) -> Response:
        """A page: the template with the visitor's sign-in state and CSRF token."""
        body = self.templates.get_template(template).render(
            signed_in=self.sessions.signed_in(request),
            csrf=self.sessions.csrf_token(request), path=request.url.path, **context)
        response = HTMLResponse(body, code, headers={
            "Content-Security-Policy": CSP, "Cache-Control": "no-store",
            "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff"})
        self.sessions.set_cookies(request, response)
        return response

    def page(self, handler: Page, *, write: bool = False) -> Callable[[Request], Awaitable[
            Response]]:
        """Wrap ``handler`` with the access rules; a refusal becomes a page saying why."""

        async def run(request: Request) -> Response:
            signed_in = self.sessions.signed_in(request)
            needs = write or self.settings.ui_require_token
            if needs and not signed_in:
                if request.method == "GET":
                    return RedirectResponse(f"/ui/sign-in?next={quote(request.url.path)}", 303)
                return self.refused(request, 401, "Sign in with the admin token first.")
            try:
                return await handler(self, request)
            except ForbiddenError as error:
                return self.refused(request, 403, str(error))
            except NotFoundError as error:
                return self.refused(request, 404, str(error))
            except BadRequestError as error:
                return self.refused(request, 400, str(error))

        return run

    def refused(self, request: Request, status: int, message: str) -> Response:
        """The error page (``role="alert"``) with ``status``."""
        return self.render(request, "error.html", status, message=message,
                           title=TITLES.get(status, "Not allowed"))

    def routes(self) -> Sequence[BaseRoute]:
        """Every dashboard route (pages in :mod:`.pages`, changes in :mod:`.actions`)."""
        from splitlab.service.ui import actions, pages

        base = "/ui/experiments/{name}"
        read = [("/ui", pages.experiments), ("/ui/debug", pages.debug),
                (base, pages.experiment), (base + "/results", pages.results_fragment)]
        write_pages = [("/ui/experiments/new", actions.new_form),
                       (base + "/edit", actions.edit_form), (base + "/end", actions.confirm_end),
                       (base + "/launch", actions.confirm_launch)]
        posts = [("/ui/experiments", actions.create), (base + "/edit", actions.save),
                 (base + "/end", actions.end), (base + "/launch", actions.launch)]
        return [
            Route("/ui/static/{file}", static, methods=["GET"]),
            Route("/ui/sign-in", self.page(actions.sign_in_form), methods=["GET"]),
            Route("/ui/sign-in", self.page(actions.sign_in), methods=["POST"]),
            Route("/ui/sign-out", self.page(actions.sign_out), methods=["POST"]),
            Route("/ui/debug", self.page(pages.debug), methods=["POST"]),
            *(Route(path, self.page(handler, write=True), methods=["GET"])
              for path, handler in write_pages),
            *(Route(path, self.page(handler), methods=["GET"]) for path, handler in read),
            *(Route(path, self.page(handler, write=True), methods=["POST"])
              for path, handler in posts),
        ]


async def static(request: Request) -> Response:
    """A packaged asset (stylesheet, script), cacheable for a day."""
    path = STATIC.get(request.path_params["file"])
    if path is None:
        raise NotFoundError(f"no asset {request.path_params['file']!r}")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".js":
        media = "text/javascript"
    return Response(path.read_bytes(), media_type=media,
                    headers={"Cache-Control": "public, max-age=86400",
                             "X-Content-Type-Options": "nosniff"})
