"""The OpenAPI 3.1 document of the config, admin and results API, and an offline docs page
rendering it.

The document is written by hand (the API is small and its wire format is fixed by Test Kitchen);
``tests/integration/test_registry_api.py`` checks that every documented path answers.
"""

from __future__ import annotations

import html
from typing import Any

import orjson

_ERROR = {"description": "What was wrong", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
_ROW = {"content": {"application/json": {"schema": {"type": "object"}}}}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]


def _kind_paths(plural: str, singular: str) -> dict[str, Any]:
    read_params = [
        {"name": "format", "in": "query", "schema": {"enum": ["config", "analytics"]},
         "description": "config (default): active rows; analytics: all, with status and phases"},
        {"name": "authority", "in": "query", "schema": {"enum": ["mediawiki", "varnish"]},
         "description": "mediawiki (default): rows; varnish: bin ranges out of 100000 per site"},
        {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
    ]
    actor: dict[str, Any] = {"name": "X-Splitlab-Actor", "in": "header",
                             "schema": {"type": "string"},
                             "description": "who makes the change (recorded in the history)"}
    write: dict[str, Any] = {"security": _AUTH, "parameters": [actor]}
    return {
        f"/api/v1/{plural}": {
            "get": {"summary": f"The {singular} config document (Test Kitchen compatible)",
                    "parameters": read_params,
                    "responses": {"200": {"description": "JSON array of rows (ETag)"},
                                  "304": {"description": "Not modified"}, "400": _ERROR}},
            "post": {**write, "summary": f"Create an {singular}", "requestBody": _ROW,
                     "responses": {"201": {"description": "Created (ETag)"}, "401": _ERROR,
                                   "409": _ERROR, "413": _ERROR, "422": _ERROR}},
        },
        f"/api/v1/{plural}/{{name}}": {
            "get": {"summary": f"One {singular} with its revision and status",
                    "parameters": [_NAME],
                    "responses": {"200": {"description": "The record (ETag)"}, "404": _ERROR}},
            "patch": {**write, "summary": f"Change fields of an {singular} (needs If-Match)",
                      "parameters": [_NAME, actor,
                                     {"name": "If-Match", "in": "header", "required": True,
                                      "schema": {"type": "string"}}],
                      "requestBody": _ROW,
                      "responses": {"200": {"description": "Updated (ETag)"}, "401": _ERROR,
                                    "404": _ERROR, "409": _ERROR, "412": _ERROR,
                                    "422": _ERROR, "428": _ERROR}},
        },
        f"/api/v1/{plural}/{{name}}/end": {
            "post": {**write, "summary": f"End a running {singular} now (kept forever)",
                     "parameters": [_NAME, actor],
                     "responses": {"200": {"description": "Ended"}, "401": _ERROR,
                                   "404": _ERROR, "409": _ERROR}},
        },
        f"/api/v1/{plural}/{{name}}/history": {
            "get": {"summary": "Every change: who, when, what changed, the row after it",
                    "parameters": [_NAME],
                    "responses": {"200": {"description": "History, oldest first"},
                                  "404": _ERROR}},
        },
    }


def _results_paths() -> dict[str, Any]:
    paging = [_NAME,
              {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                          "maximum": 200, "default": 20}},
              {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}]
    metric = {"name": "metric", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/api/v1/experiments/{name}/results": {"get": {
            "summary": "The latest results run: the `splitlab analyze --format json` report "
                       "plus computed_at, events_through, engine and health",
            "parameters": [_NAME],
            "responses": {"200": {"description": "The latest run"},
                          "404": _ERROR}}},
        "/api/v1/experiments/{name}/results/history": {"get": {
            "summary": "Every results run, newest first (paged)", "parameters": paging,
            "responses": {"200": {"description": "{experiment, total, limit, offset, runs}"},
                          "400": _ERROR, "404": _ERROR}}},
        "/api/v1/experiments/{name}/metrics": {
            "get": {"summary": "The metrics the experiment's results compute",
                    "parameters": [_NAME],
                    "responses": {"200": {"description": "{experiment, metrics}"},
                                  "404": _ERROR}},
            "put": {"security": _AUTH, "summary": "Name the experiment's metrics (in order)",
                    "parameters": [_NAME], "requestBody": _ROW,
                    "responses": {"200": {"description": "{experiment, metrics}"},
                                  "401": _ERROR, "404": _ERROR, "422": _ERROR}}},
        "/api/v1/metrics": {"get": {"summary": "The metrics catalog",
                                    "responses": {"200": {"description": "{metrics: [...]}"}}}},
        "/api/v1/metrics/{metric}": {
            "get": {"summary": "One metric's definition", "parameters": [metric],
                    "responses": {"200": {"description": "The metric"}, "404": _ERROR}},
            "put": {"security": _AUTH, "summary": "Create or replace a metric (a catalog entry)",
                    "parameters": [metric], "requestBody": _ROW,
                    "responses": {"200": {"description": "The metric"}, "401": _ERROR,
                                  "422": _ERROR}},
            "delete": {"security": _AUTH, "summary": "Remove a metric no experiment names",
                       "parameters": [metric],
                       "responses": {"204": {"description": "Removed"}, "401": _ERROR,
                                     "404": _ERROR, "409": _ERROR}}},
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the registry's HTTP API."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "splitlab registry API", "version": "1",
                 "description": "Test Kitchen compatible config API and the admin API."},
        "paths": {**_kind_paths("experiments", "experiment"),
                  **_kind_paths("instruments", "instrument"), **_results_paths(),
                  "/metrics": {"get": {"summary": "Prometheus metrics",
                                       "responses": {"200": {"description": "text"}}}}},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error", "message"],
                                  "properties": {"error": {"type": "string"},
                                                 "message": {"type": "string"},
                                                 "field": {"type": "string"}}}},
        },
    }


_SCRIPT = """
async function send(form) {
  const headers = {"Content-Type": "application/json"};
  if (form.token.value) headers["Authorization"] = "Bearer " + form.token.value;
  if (form.ifmatch.value) headers["If-Match"] = form.ifmatch.value;
  const init = {method: form.method.value, headers};
  if (form.body.value.trim()) init.body = form.body.value;
  const response = await fetch(form.path.value, init);
  const etag = response.headers.get("ETag");
  form.querySelector("pre").textContent = response.status + (etag ? " ETag " + etag : "") +
    "\\n" + await response.text();
  return false;
}
"""


def docs_page(document: dict[str, Any]) -> bytes:
    """A self-contained HTML page: every operation of ``document`` and a form to try requests."""
    rows = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            params = ", ".join(p["name"] for p in operation.get("parameters", []))
            codes = " ".join(sorted(operation.get("responses", {})))
            rows.append(f"<tr><td><b>{method.upper()}</b></td><td><code>{html.escape(path)}"
                        f"</code></td><td>{html.escape(operation['summary'])}</td>"
                        f"<td>{html.escape(params)}</td><td>{codes}</td></tr>")
    spec = html.escape(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(document["info"]["title"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{padding:2px 8px;vertical-align:top}}
textarea,input{{font-family:monospace}}</style><script>{_SCRIPT}</script></head><body>
<h1>{html.escape(document["info"]["title"])}</h1><p>{html.escape(document["info"]["description"])}
 The machine-readable document is at <a href="/openapi.json">/openapi.json</a>.</p>
<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th><th>statuses</th></tr>
{"".join(rows)}</table>
<h2>Try it</h2><form onsubmit="return send(this) && false">
<select name="method"><option>GET</option><option>POST</option><option>PATCH</option></select>
<input name="path" size="50" value="/api/v1/experiments?format=analytics">
<br>Admin token <input name="token" type="password" size="40">
If-Match <input name="ifmatch" size="30"><br>
<textarea name="body" rows="8" cols="80" placeholder="JSON body"></textarea><br>
<button>Send</button><pre></pre></form>
<h2>OpenAPI document</h2><pre>{spec}</pre></body></html>"""
    return page.encode("utf-8")
