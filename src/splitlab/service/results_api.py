"""The results area: the results API, the metrics catalog's admin API, the scheduler inside the
service, and the experiment gauges at ``/metrics``.

- ``GET /api/v1/experiments/{name}/results``: the latest run, as ``splitlab analyze --format
  json`` prints it plus ``computed_at``, ``events_through``, ``engine`` and ``health``; 404 before
  the first run. ``.../results/history?limit=&offset=``: the runs, newest first.
- ``GET /api/v1/metrics``, ``GET|PUT|DELETE /api/v1/metrics/{name}``: the catalog;
  ``GET|PUT /api/v1/experiments/{name}/metrics``: the metrics an experiment names. Writes need
  the admin token.
- Gauges, read from the store at each scrape for running experiments only (an experiment's
  series go when it ends): ``splitlab_experiment_units{experiment, group}``,
  ``splitlab_experiment_srm_p_value{experiment}``, ``splitlab_experiment_health{experiment,
  check}`` (1 ok, 0 failing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from splitlab.core.model import format_time
from splitlab.errors import BadRequestError, NotFoundError
from splitlab.registry import views
from splitlab.registry.store import Registry
from splitlab.results.background import SchedulerThread
from splitlab.results.store import MetricDefinition, ResultsStore, Run
from splitlab.service.api_support import (
    ensure_admin_token,
    json_response,
    read_json,
    require_admin,
)
from splitlab.service.settings import Settings

RegistryRef = Callable[[], Registry | None]
HISTORY_PAGE = 20
HISTORY_MAX = 200
SCRAPE_CACHE_SECONDS = 2.0


def run_json(run: Run) -> dict[str, Any]:
    """A stored run on the wire: the report's fields plus when, through what, and health."""
    return {**run.report, "computed_at": format_time(run.computed_at),
            "events_through": run.events_through, "engine": run.engine, "health": run.health}


def metric_json(metric: MetricDefinition) -> dict[str, Any]:
    return {"name": metric.name, **metric.definition,
            "updated_at": format_time(metric.updated_at)}


def _page(request: Request, name: str, default: int, maximum: int) -> int:
    text = request.query_params.get(name, str(default))
    if not text.isdigit() or int(text) > maximum:
        raise BadRequestError(f"{name} must be a whole number from 0 to {maximum}")
    return int(text)


class ResultsGauges(Collector):
    """The experiment gauges, computed from the results store at each scrape (cached briefly)."""

    NAMES = ("splitlab_experiment_units", "splitlab_experiment_srm_p_value",
             "splitlab_experiment_health")

    def __init__(self, component: ResultsComponent) -> None:
        self.component = component
        self._cache: tuple[float, list[GaugeMetricFamily]] = (0.0, [])

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(self.NAMES[0], "Units per group in the latest results run "
                              "(running experiments).", labels=["experiment", "group"]),
            GaugeMetricFamily(self.NAMES[1], "p-value of the sample ratio mismatch test in the "
                              "latest results run.", labels=["experiment"]),
            GaugeMetricFamily(self.NAMES[2], "Health checks of the latest results run "
                              "(1 ok, 0 failing).", labels=["experiment", "check"]),
        ]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        at, cached = self._cache
        if time.monotonic() - at > SCRAPE_CACHE_SECONDS:
            cached = self._compute()
            self._cache = (time.monotonic(), cached)
        yield from cached

    def _compute(self) -> list[GaugeMetricFamily]:
        units, srm, checks = families = self._families()
        for name, run in self.component.latest_running().items():
            for group, count in run.report.get("groups", {}).items():
                units.add_metric([name, group], float(count))
            p_value = run.report.get("srm", {}).get("p_value")
            if p_value is not None:
                srm.add_metric([name], float(p_value))
            for check in run.health:
                checks.add_metric([name, check["check"]], 1.0 if check["ok"] else 0.0)
        return families


class ResultsComponent:
    """The results area of the service (a :class:`~splitlab.service.app.Component`).

    ``registry`` returns the registry area's open store (its database holds the results);
    ``scheduler`` starts the in-service scheduler (``None``: results come from a worker).
    """

    def __init__(self, settings: Settings, registry: RegistryRef,
                 scheduler: Callable[[Registry], SchedulerThread] | None = None) -> None:
        self.settings = settings
        self.registry_ref = registry
        self.start_scheduler = scheduler
        self.gauges = ResultsGauges(self)
        self.token = ""
        self._thread: SchedulerThread | None = None

    def store(self) -> ResultsStore:
        registry = self.registry_ref()
        if registry is None:
            raise RuntimeError("the registry has not started")
        return ResultsStore(registry.engine, registry.tables.prefix)

    async def start(self) -> None:
        """Load the admin token; start the scheduler thread when configured."""
        self.token, _ = ensure_admin_token(self.settings.admin_token, self.settings.data_dir)
        registry = self.registry_ref()
        if self.start_scheduler is not None and registry is not None:
            self._thread = await run_in_threadpool(self.start_scheduler, registry)

    async def stop(self) -> None:
        """Stop the scheduler thread (after its running computation)."""
        if self._thread is not None:
            await run_in_threadpool(self._thread.stop)
            self._thread = None

    def latest_running(self) -> dict[str, Run]:
        """The latest run of each running experiment (empty before the registry started)."""
        registry = self.registry_ref()
        if registry is None:
            return {}
        now = datetime.now(UTC)
        names = [r.name for r in registry.records("experiment")
                 if views.status(r.row, now) == "running"]
        return self.store().latest_of(names)

    def routes(self) -> Sequence[BaseRoute]:
        base = "/api/v1/experiments/{name}"
        return [
            Route(base + "/results", self.latest, methods=["GET"]),
            Route(base + "/results/history", self.history, methods=["GET"]),
            Route(base + "/metrics", self.experiment_metrics, methods=["GET"]),
            Route(base + "/metrics", self.set_experiment_metrics, methods=["PUT"]),
            Route("/api/v1/metrics", self.list_metrics, methods=["GET"]),
            Route("/api/v1/metrics/{metric}", self.show_metric, methods=["GET"]),
            Route("/api/v1/metrics/{metric}", self.put_metric, methods=["PUT"]),
            Route("/api/v1/metrics/{metric}", self.delete_metric, methods=["DELETE"]),
        ]

    def _experiment(self, request: Request) -> str:
        """The path's experiment, which must exist (:class:`NotFoundError`)."""
        name: str = request.path_params["name"]
        registry = self.registry_ref()
        if registry is None:
            raise RuntimeError("the registry has not started")
        registry.get("experiment", name)
        return name

    async def latest(self, request: Request) -> Response:
        name = await run_in_threadpool(self._experiment, request)
        run = await run_in_threadpool(self.store().latest, name)
        if run is None:
            raise NotFoundError(
                f"no results for {name!r} yet: they are computed every "
                f"{self.settings.results_interval:g} s (or by `splitlab results run`) once "
                "its enrollment events have arrived")
        return json_response(run_json(run), headers={"Cache-Control": "no-cache"})

    async def history(self, request: Request) -> Response:
        limit = _page(request, "limit", HISTORY_PAGE, HISTORY_MAX)
        offset = _page(request, "offset", 0, 10**9)
        name = await run_in_threadpool(self._experiment, request)
        store = self.store()
        runs = await run_in_threadpool(store.history, name, limit, offset)
        total = await run_in_threadpool(store.count, name)
        return json_response({"experiment": name, "total": total, "limit": limit,
                              "offset": offset, "runs": [run_json(r) for r in runs]})

    async def experiment_metrics(self, request: Request) -> Response:
        name = await run_in_threadpool(self._experiment, request)
        names = await run_in_threadpool(self.store().experiment_metrics, name)
        return json_response({"experiment": name, "metrics": names})

    async def set_experiment_metrics(self, request: Request) -> Response:
        require_admin(request, self.token)
        body = await read_json(request)
        name = await run_in_threadpool(self._experiment, request)
        names = body.get("metrics") if isinstance(body, dict) else None
        stored = await run_in_threadpool(self.store().set_experiment_metrics, name, names)
        return json_response({"experiment": name, "metrics": stored})

    async def list_metrics(self, request: Request) -> Response:
        found = await run_in_threadpool(self.store().metric_definitions)
        return json_response({"metrics": [metric_json(m) for m in found]})

    async def show_metric(self, request: Request) -> Response:
        found = await run_in_threadpool(self.store().metric, request.path_params["metric"])
        return json_response(metric_json(found))

    async def put_metric(self, request: Request) -> Response:
        require_admin(request, self.token)
        body = await read_json(request)
        stored = await run_in_threadpool(self.store().put_metric, request.path_params["metric"],
                                         body, datetime.now(UTC))
        return json_response(metric_json(stored))

    async def delete_metric(self, request: Request) -> Response:
        require_admin(request, self.token)
        await run_in_threadpool(self.store().delete_metric, request.path_params["metric"])
        return Response(status_code=204)
