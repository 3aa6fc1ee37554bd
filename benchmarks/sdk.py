"""SDK cost per request and per coordinator call, beside the bare core ``assign``.

Run: ``.venv/bin/python benchmarks/sdk.py [--requests N] [--calls N]``.

* manager: ``client.manager(user_id, anonymous_id, session_id)`` with 50 active experiments
  (30 mw-user, 15 edge-unique, 5 session), every unit enrolled in every experiment (rate 1).
  The baseline is the bare core ``assign`` over the same 50 (experiment, unit) pairs, which is
  work the manager cannot avoid; the difference is what the manager adds.
* manager+: the same plus three ``get_experiment`` lookups and the response header.
* page: the same plus decorating a small HTML page (config block and body classes).
* coordinator: ``client.get_assignment_for_user`` calls per second beside bare ``assign``.
* config load: the 50 served rows built into experiments (what every config refresh costs),
  beside Test Kitchen's ``exposure_version`` of the same rows alone (its share of the load).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from splitlab.core.assignment import assign
from splitlab.core.exposure import exposure_version
from splitlab.core.model import Experiment
from splitlab.sdk import Client, MemoryConfigSource, MemoryEventSender
from splitlab.sdk.web import WebOptions, decorate_html

UNITS = ["mw-user"] * 30 + ["edge-unique"] * 15 + ["session"] * 5
OPTIONS = WebOptions()
PAGE = b"<html><head><title>t</title></head><body class='skin'>" + b"<p>text</p>" * 200 + (
    b"</body></html>")


def rows() -> list[dict[str, Any]]:
    return [
        {"name": f"benchmark-experiment-{i:02d}", "groups": ["control", "treatment"],
         "sample_rate": {"default": 1.0}, "user_identifier_type": unit,
         "start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}
        for i, unit in enumerate(UNITS)
    ]


Cases = dict[str, Callable[[int], object]]


def best_of(repeats: int, count: int, cases: Cases) -> dict[str, float]:
    """Seconds per iteration of each case: the best of ``repeats`` rounds of ``count``
    iterations, the cases interleaved round by round so that load from other processes on a
    shared machine hits them alike. CPU time of this process, not wall time, so that time
    spent waiting for a core does not count."""
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeats):
        for name, work in cases.items():
            started = time.process_time()
            for i in range(count):
                work(i)
            best[name] = min(best[name], (time.process_time() - started) / count)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()

    source = MemoryConfigSource(rows())
    client = Client(source, MemoryEventSender())
    experiments: list[Experiment] = list(source.load().experiments)
    by_unit = {"mw-user": 0, "edge-unique": 1, "session": 2}

    def bare(i: int) -> None:
        ids = (i, f"anon-{i}", f"sess-{i}")
        for experiment in experiments:
            assign(ids[by_unit[experiment.user_identifier_type]], experiment)

    def manager(i: int) -> None:
        client.manager(user_id=i, anonymous_id=f"anon-{i}", session_id=f"sess-{i}")

    def manager_plus(i: int) -> None:
        m = client.manager(user_id=i, anonymous_id=f"anon-{i}", session_id=f"sess-{i}")
        for name in ("benchmark-experiment-00", "benchmark-experiment-31", "missing-one"):
            m.get_experiment(name).get_assigned_group()
        m.enrollments_header()

    def page(i: int) -> None:
        m = client.manager(user_id=i, anonymous_id=f"anon-{i}", session_id=f"sess-{i}")
        decorate_html(PAGE, "text/html; charset=utf-8", m, OPTIONS)

    request = best_of(args.repeats, args.requests,
                      {"bare": bare, "manager": manager, "plus": manager_plus, "page": page})
    per_bare, per_manager = request["bare"], request["manager"]
    per_plus, per_page = request["plus"], request["page"]
    print(f"50 active experiments, {args.requests} requests, best of {args.repeats}")
    print(f"  bare core assign x50   {per_bare * 1e6:8.1f} us/request")
    print(f"  client.manager(...)    {per_manager * 1e6:8.1f} us/request"
          f"   adds {(per_manager - per_bare) * 1e6:6.1f} us")
    print(f"  + 3 lookups + header   {per_plus * 1e6:8.1f} us/request"
          f"   adds {(per_plus - per_bare) * 1e6:6.1f} us")
    print(f"  + HTML decoration      {per_page * 1e6:8.1f} us/request"
          f"   adds {(per_page - per_bare) * 1e6:6.1f} us")

    target = experiments[0]
    calls = best_of(args.repeats, args.calls, {
        "assign": lambda i: assign(i, target),
        "client": lambda i: client.get_assignment_for_user(i, target.name),
    })
    per_assign, per_call = calls["assign"], calls["client"]
    print(f"coordinator, {args.calls} calls, best of {args.repeats}")
    print(f"  bare core assign                 {1 / per_assign:12,.0f} calls/s")
    print(f"  client.get_assignment_for_user   {1 / per_call:12,.0f} calls/s"
          f"   adds {(per_call - per_assign) * 1e6:5.2f} us/call")

    served = [experiment.to_config() for experiment in experiments]
    loads = best_of(args.repeats, max(1, args.requests // 100), {
        "load": lambda _: [Experiment.from_config(row) for row in served],
        "digest": lambda _: [exposure_version(row) for row in served],
    })
    print(f"config load, {len(served)} served rows, best of {args.repeats}")
    print(f"  Experiment.from_config x{len(served)}   {loads['load'] * 1e3:8.2f} ms/load")
    print(f"  of which exposure_version     {loads['digest'] * 1e3:8.2f} ms/load")


if __name__ == "__main__":
    main()
