"""Page decoration and the web middlewares: what they cost, beside the same work without them.

Run: ``.venv/bin/python benchmarks/web.py [--requests N] [--repeats N]``.

* scan: finding the ``<body>`` tag of the small page of ``benchmarks/sdk.py`` and of a page
  with a heavy head (18 kB: meta and link tags, a 9 kB inline script, a style sheet, a
  comment), with the tokenizer-grade :class:`BodyScanner` beside
  the naive regular expression the SDK used before (``<body\\b[^>]*>``, which a ``"<body>"``
  string in a script fools), and whole decoration of that page (5 experiments).
* FastAPI: µs per request through the ASGI stack (no network, one event loop) for an HTML page
  and a JSON API, bare, with splitlab, and with splitlab beside Starlette's GZip in both orders.
* Django: µs per request through ``django.test.Client`` for the same page, bare and with
  ``SplitlabMiddleware``, with GZip in both orders.

Each case is the best of ``repeats`` interleaved rounds, in CPU time of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable
from typing import Any

from sdk import best_of  # the same interleaved, CPU-timed rounds as benchmarks/sdk.py
from splitlab.core.html_scan import BodyScanner
from splitlab.sdk import Client, MemoryConfigSource, MemoryEventSender
from splitlab.sdk.web import WebOptions, decorate_html

HEAD = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Article</title>"
        + "<meta name='x' content='a &quot;quoted&quot; value'>" * 20
        + "<link rel='stylesheet' href='/static/site.css?v=1'>" * 10
        + "<!-- analytics: do not put <body> here -->"
        + "<script>var tpl = '<body class=\"x\">'; " + "if (a < b && c > d) { f(); } " * 300
        + "</script><style>" + "body > p { margin: 0 } " * 200 + "</style></head>")
PAGE = (HEAD + "<body class='skin'>" + "<p>text</p>" * 200 + "</body></html>").encode()
SMALL = (b"<html><head><title>t</title></head><body class='skin'>" + b"<p>text</p>" * 200
         + b"</body></html>")
NAIVE = re.compile(rb"<body\b[^>]*>", re.IGNORECASE)
ROWS = [{"name": f"web-bench-{i}", "groups": ["control", "treatment"],
         "sample_rate": {"default": 1.0}, "user_identifier_type": "edge-unique",
         "start": "2020-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z"} for i in range(5)]
COOKIE = "splitlab_anon=" + "B" * 22


def report(title: str, figures: dict[str, float], baseline: str) -> None:
    print(title)
    for name, seconds in figures.items():
        extra = "" if name == baseline else f"   adds {(seconds - figures[baseline]) * 1e6:7.1f} us"
        print(f"  {name:38s} {seconds * 1e6:9.2f} us{extra}")


def client() -> Client:
    return Client(MemoryConfigSource(ROWS), MemoryEventSender())


def scan_cases(args: argparse.Namespace) -> None:
    manager = client().manager(anonymous_id="B" * 22)
    options = WebOptions()
    for page in (SMALL, PAGE):
        figures = best_of(args.repeats, args.requests * 5, {
            "naive regex": lambda i, page=page: NAIVE.search(page),
            "BodyScanner": lambda i, page=page: BodyScanner().scan(page),
            "decorate_html (scan + splice + block)": lambda i, page=page: decorate_html(
                page, "text/html", manager, options),
        })
        report(f"<body> in a {len(page):,} byte page, best of {args.repeats}", figures,
               "naive regex")


def fastapi_cases(args: argparse.Namespace) -> None:
    from fastapi import FastAPI
    from fastapi.middleware.gzip import GZipMiddleware
    from fastapi.responses import HTMLResponse

    from splitlab.sdk.asgi import SplitlabASGIMiddleware

    def app(order: str) -> Any:
        made = FastAPI()
        made.get("/", response_class=HTMLResponse)(lambda: PAGE.decode())
        made.get("/api")(lambda: {"ok": True})
        layers = {"bare": [], "splitlab": ["s"], "gzip outside splitlab": ["s", "g"],
                  "gzip inside splitlab": ["g", "s"]}[order]
        for layer in layers:
            if layer == "s":
                made.add_middleware(SplitlabASGIMiddleware, client=client())
            else:
                made.add_middleware(GZipMiddleware, minimum_size=500)
        return made

    loop = asyncio.new_event_loop()

    def call(asgi: Any, path: str) -> Callable[[int], object]:
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "scheme": "http", "http_version": "1.1",
                 "headers": [(b"cookie", COOKIE.encode()), (b"accept-encoding", b"gzip")],
                 "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1)}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            return None

        return lambda i: loop.run_until_complete(asgi(dict(scope), receive, send))

    for path in ("/", "/api"):
        cases = {order: call(app(order), path) for order in
                 ("bare", "splitlab", "gzip outside splitlab", "gzip inside splitlab")}
        report(f"FastAPI {path}, best of {args.repeats}", best_of(args.repeats, args.requests,
                                                                  cases), "bare")
    loop.close()


def django_cases(args: argparse.Namespace) -> None:
    import django
    from django.conf import settings
    from django.http import HttpResponse

    settings.configure(DEBUG=False, SECRET_KEY="bench", ALLOWED_HOSTS=["testserver"],
                       ROOT_URLCONF=sys.modules[__name__], MIDDLEWARE=[], USE_TZ=True)
    django.setup()
    from django.test import Client as TestClient
    from django.test import override_settings
    from django.urls import path

    globals()["urlpatterns"] = [path("", lambda request: HttpResponse(PAGE))]
    splitlab = "splitlab.sdk.django.SplitlabMiddleware"
    gzip = "django.middleware.gzip.GZipMiddleware"
    stacks = {"bare": [], "splitlab": [splitlab], "gzip outside splitlab": [gzip, splitlab],
              "gzip inside splitlab": [splitlab, gzip]}
    cases = {}
    for name, middleware in stacks.items():
        with override_settings(MIDDLEWARE=middleware, SPLITLAB_CLIENT=client()):
            tester = TestClient(HTTP_COOKIE=COOKIE, HTTP_ACCEPT_ENCODING="gzip")
            tester.get("/")  # loads the middleware chain under these settings
        cases[name] = lambda i, tester=tester: tester.get("/")
    report(f"Django / (django.test.Client), best of {args.repeats}",
           best_of(args.repeats, args.requests, cases), "bare")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    scan_cases(args)
    fastapi_cases(args)
    django_cases(args)


if __name__ == "__main__":
    main()
