"""The OpenAPI 3.1 document of every route the service serves, and an offline docs page.

The document is written by hand (the API is small and its wire formats are fixed by Test
Kitchen, EventGate and OFREP); ``tests/unit/service/test_openapi.py`` checks that it lists every
route and method the application serves and nothing else.
"""

from __future__ import annotations

import html
from typing import Any

import orjson


def _json(description: str, schema: str | None = None) -> dict[str, Any]:
    content = {"schema": {"$ref": f"#/components/schemas/{schema}"}} if schema else {}
    return {"description": description, "content": {"application/json": content}}


_ERROR = _json("What was wrong", "Error")
_ROW = {"content": {"application/json": {"schema": {"type": "object"}}}}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]


def _kind_paths(plural: str, singular: str, show: str = "with its revision and status"
                ) -> dict[str, Any]:
    a = "an" if singular[0] in "aeiou" else "a"
    served = singular in ("experiment", "instrument")  # what Test Kitchen reads
    read_params = [
        {"name": "format", "in": "query", "schema": {"enum": ["config", "analytics"]},
         "description": "config (default): active rows; analytics: all, with status and phases"},
        {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
    ]
    if served:
        read_params.insert(1, {
            "name": "authority", "in": "query", "schema": {"enum": ["mediawiki", "varnish"]},
            "description": "mediawiki (default): rows; varnish: the CDN edge config "
                           "(wmfuniq abtests: experiment → domain → group → [first, last] "
                           "bucket of 0..99999)"})
    actor: dict[str, Any] = {"name": "X-Splitlab-Actor", "in": "header",
                             "schema": {"type": "string"},
                             "description": "who makes the change (recorded in the history)"}
    write: dict[str, Any] = {"security": _AUTH, "parameters": [actor]}
    return {
        f"/api/v1/{plural}": {
            "get": {"summary": f"The {singular} config document (Test Kitchen compatible)"
                    if served else f"The {singular} rows (format=analytics: ended ones too)",
                    "parameters": read_params,
                    "responses": {"200": {"description": "JSON array of rows (ETag)"},
                                  "304": {"description": "Not modified"}, "400": _ERROR}},
            "post": {**write, "summary": f"Create {a} {singular}", "requestBody": _ROW,
                     "responses": {"201": {"description": "Created (ETag)"}, "400": _ERROR,
                                   "401": _ERROR,
                                   "409": _ERROR, "413": _ERROR, "422": _ERROR}},
        },
        f"/api/v1/{plural}/{{name}}": {
            "get": {"summary": f"One {singular} {show}",
                    "parameters": [_NAME],
                    "responses": {"200": {"description": "The record (ETag)"}, "404": _ERROR}},
            "patch": {**write,
                      "summary": f"Change fields of {a} {singular} (If-Match: its ETag, not *)",
                      "parameters": [_NAME, actor,
                                     {"name": "If-Match", "in": "header", "required": True,
                                      "schema": {"type": "string"}}],
                      "requestBody": _ROW,
                      "responses": {"200": {"description": "Updated (ETag)"}, "400": _ERROR,
                                    "401": _ERROR,
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


def _intake_paths() -> dict[str, Any]:
    message = _json("{message}", "Message")
    statuses = _json("EventGate's summary and per-event statuses", "EventStatuses")
    events = {
        "post": {
            "summary": "Send events (EventGate's contract): a JSON array of events, or one event",
            "parameters": [{"name": "hasty", "in": "query", "schema": {"type": "boolean"},
                            "description": "true: answer 202 at once, process afterwards"}],
            "requestBody": {"content": {
                "application/json": {"schema": {"type": ["array", "object"]}},
                "text/plain": {"schema": {
                    "type": "string", "description": "JSON text (navigator.sendBeacon)"}}}},
            "responses": {
                "201": {"description": "Every event was stored durably"},
                "202": {"description": "hasty: the batch was queued"},
                "207": statuses, "400": _json("Every event invalid (as 207), or the body is "
                                              "empty or not JSON ({message})"),
                "413": message, "415": message,
                "500": _json("No event stored and at least one failed (as 207)"),
                "503": _json("hasty queue full; retry after Retry-After seconds", "Message")}},
        "options": {"summary": "CORS preflight (origins in SPLITLAB_EVENTS_CORS_ORIGINS)",
                    "responses": {"204": {"description": "Allowed"},
                                  "403": {"description": "Origin not allowed"}}},
    }
    return {"/v1/events": events, "/v1/events/": events}  # EventGate answers both


def _ofrep_paths() -> dict[str, Any]:
    context = {"required": True, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/EvaluationRequest"}}}}
    failure = _json("PARSE_ERROR, INVALID_CONTEXT or TARGETING_KEY_MISSING", "OfrepError")
    plain = _json("OFREP's general error body", "OfrepGeneral")
    common = {"401": plain, "403": plain, "413": plain,
              "429": _json("Over the rate limit; Retry-After says when to retry", "OfrepGeneral"),
              "500": plain}
    key = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"},
           "description": "the experiment name"}
    return {
        "/ofrep/v1/evaluate/flags": {"post": {
            "summary": "OFREP bulk evaluation: every experiment that runs on the client",
            "security": [{"bearer": []}, {"apiKey": []}], "requestBody": context,
            "parameters": [{"name": "If-None-Match", "in": "header",
                            "schema": {"type": "string"}}],
            "responses": {"200": _json("{flags: [...]} (ETag)"),
                          "304": {"description": "Not modified"}, "400": failure, **common}}},
        "/ofrep/v1/evaluate/flags/{key}": {"post": {
            "summary": "OFREP evaluation of one experiment (a string flag: the group)",
            "security": [{"bearer": []}, {"apiKey": []}], "requestBody": context,
            "parameters": [key],
            "responses": {"200": _json("{key, value, variant, reason, metadata}"),
                          "400": failure, "404": _json("FLAG_NOT_FOUND", "OfrepError"),
                          **common}}},
    }


def _client_paths() -> dict[str, Any]:
    request = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["identifiers"],
        "properties": {"identifiers": {"type": "object", "additionalProperties": {
            "type": ["string", "integer"]}}, "site": {"type": "string"},
            "attributes": {"type": "object"}}}}}}
    return {
        "/.well-known/splitlab-keys.json": {"get": {
            "summary": "The JWK set of the payload signing keys (current, next, previous)",
            "responses": {"200": _json("JWK set (Ed25519), cacheable for an hour")}}},
        "/client/v1/payload": {"post": {
            "summary": "The signed client payload of one unit (an envelope)",
            "security": [{"bearer": []}, {"apiKey": []}], "requestBody": request,
            "responses": {"200": _json("{alg, kid, payload, sig}"), "400": _ERROR,
                          "401": _ERROR, "403": _ERROR, "413": _ERROR}}},
    }


def _service_paths() -> dict[str, Any]:
    def text(summary: str, description: str) -> dict[str, Any]:
        return {"get": {"summary": summary, "responses": {"200": {"description": description}}}}

    return {"/healthz": text("Liveness", '{"status": "ok"}'),
            "/metrics": text("Prometheus metrics", "text"),
            "/openapi.json": text("This document", "OpenAPI 3.1"),
            "/docs": text("This document as a page", "HTML")}


_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "message"],
              "description": "The problem shape of every error outside /ofrep/",
              "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                             "field": {"type": "string"}}},
    "Message": {"type": "object", "required": ["message"],
                "properties": {"message": {"type": "string"}}},
    "EventStatuses": {"type": "object", "properties": {
        "message": {"type": "string"}, "invalid": {"type": "array"}, "error": {"type": "array"}}},
    "EvaluationRequest": {"type": "object", "properties": {"context": {
        "type": "object", "properties": {"targetingKey": {"type": "string"},
                                         "site": {"type": "string"}}}}},
    "OfrepError": {"type": "object", "required": ["errorCode"],
                   "description": "OFREP's error shape (key on the single-flag route)",
                   "properties": {"key": {"type": "string"}, "errorCode": {"type": "string"},
                                  "errorDetails": {"type": "string"}}},
    "OfrepGeneral": {"type": "object", "properties": {"errorDetails": {"type": "string"}}},
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
    """The OpenAPI document of every route of the service."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "splitlab API", "version": "1",
                 "description": "Test Kitchen compatible config API, the admin API (experiments, "
                              "instruments, layers, holdouts), the event "
                              "intake (EventGate's contract), results, OFREP and client delivery."},
        "paths": {**_kind_paths("experiments", "experiment"),
                  **_kind_paths("instruments", "instrument"),
                  **_kind_paths("layers", "layer", "with its status and occupancy: the "
                                "experiments holding ranges of its 100000 bins, and the free "
                                "ranges"),
                  **_kind_paths("holdouts", "holdout"), **_results_paths(),
                  **_intake_paths(), **_ofrep_paths(), **_client_paths(), **_service_paths()},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": _SCHEMAS,
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
