"""Assignment throughput: splitlab's ``assign`` and ``assign_many`` beside baselines, one run.

Baselines over the same identifiers:
- the bare hash loop ``hashlib.sha256((str(id) + name).encode()).hexdigest()`` (the floor);
- GrowthBook's Python SDK evaluating a 2-group 50/50 experiment, offline;
- Eppo's server SDK (compiled Rust evaluator) with a local flag configuration and no poller.

The targeted case evaluates one flag everywhere: a targeting rule (platform is desktop or mobile,
at least one edit) and a weighted split (10 % control, 30 % treatment): splitlab's ``resolve`` on
an ``sl-v2`` row, Eppo with an allocation rule and shard ranges, GrowthBook with a rule condition,
weights and coverage, and again with a namespace (half of it). Beside them, the floor of that
case for splitlab (one call into C hashing the identifier, no gates) and ``pure_resolve``.

Every contender runs the same loop shape (``for key in keys: call(key)``, results dropped).

Run: ``.venv/bin/python benchmarks/assign.py [--n 300000]``. Prints one line per contender and
the ratios the foundation issue targets. Absolute figures move with the machine; ratios in the
same run hold.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable

from splitlab import Experiment, assign
from splitlab.bulk import assign_many
from splitlab.core.assignment import ACCELERATED, layout_for, pure_assign, pure_assign_batch

try:
    from splitlab.core import _tkv1  # type: ignore[attr-defined]
except ImportError:
    _tkv1 = None

NAME = "benchmark-experiment-2026"


def timed(label: str, count: int, run: Callable[[], object], repeat: int = 3) -> float:
    """Best of ``repeat`` runs, as operations per second."""
    best = min(_once(run) for _ in range(repeat))
    rate = count / best
    print(f"{label:<44} {rate:>14,.0f} /s   ({best * 1e6 / count:.3f} µs each)")
    return rate


def _once(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def growthbook_rate(keys: list[str]) -> float:
    from growthbook import Experiment as GBExperiment
    from growthbook import GrowthBook

    gb = GrowthBook(attributes={"id": ""})
    gb_exp = GBExperiment(key=NAME, variations=["control", "treatment"], weights=[0.5, 0.5])

    def run() -> None:
        for key in keys:
            gb.set_attributes({"id": key})
            gb.run(gb_exp)

    inline = timed("GrowthBook gb.run, inline experiment", len(keys), run)
    rule = {"key": NAME, "variations": ["control", "treatment"], "weights": [0.5, 0.5],
            "hashAttribute": "id"}
    feature_gb = GrowthBook(
        attributes={"id": ""}, features={"f": {"defaultValue": "none", "rules": [rule]}}
    )

    def run_feature() -> None:
        for key in keys:
            feature_gb.set_attributes({"id": key})
            feature_gb.get_feature_value("f", "none")

    feature = timed("GrowthBook get_feature_value, experiment rule", len(keys), run_feature)
    return max(inline, feature)


def eppo_client(log: bool, ranges: tuple[int, ...] = (0, 5000, 10000),
                rules: list[object] | None = None) -> object:
    """Eppo with one flag: ``ranges`` are the shard edges of control and treatment."""
    import eppo_client
    from eppo_client.assignment_logger import AssignmentLogger

    variations = {g: {"key": g, "value": g} for g in ("control", "treatment")}
    split = [
        {"variationKey": g, "shards": [{"salt": NAME, "ranges": [{"start": s, "end": e}]}]}
        for g, s, e in (("control", ranges[0], ranges[1]), ("treatment", ranges[1], ranges[2]))
    ]
    flags = {
        "createdAt": "2026-11-22T00:00:00Z",
        "format": "SERVER",
        "environment": {"name": "benchmark"},
        "flags": {
            NAME: {
                "key": NAME, "enabled": True, "variationType": "STRING", "totalShards": 10000,
                "variations": variations,
                "allocations": [{"key": "all", "rules": rules or [], "splits": split,
                                 "doLog": log}],
            }
        },
    }
    configuration = eppo_client.Configuration(flags_configuration=json.dumps(flags).encode())
    eppo_client.init(
        eppo_client.ClientConfig(
            api_key="offline", base_url="http://127.0.0.1:9", assignment_logger=AssignmentLogger(),
            poll_interval_seconds=None, initial_configuration=configuration,
        )
    )
    return eppo_client.get_instance()


def eppo_rate(keys: list[str], log: bool) -> float:
    """Eppo evaluating only (``doLog`` off), or as deployed (assignments go to a logger)."""
    client = eppo_client(log)
    get = client.get_string_assignment  # type: ignore[attr-defined]
    assert {get(NAME, k, {}, "none") for k in keys[:1000]} == {"control", "treatment"}

    def run() -> None:
        for key in keys:
            get(NAME, key, {}, "none")

    label = "with assignment logging" if log else "evaluation only"
    return timed(f"Eppo get_string_assignment, {label}", len(keys), run)


PLATFORMS = ("desktop", "mobile", "app")


def floor_rate(people: list[tuple[str, dict[str, object]]], exp: Experiment) -> float:
    """The least any ``resolve`` in C can cost here: one call from Python into C that hashes
    the identifier with SHA-256, writes the 64-hex subject id and returns a tuple (the slot,
    without gates, targeting or the plan lookup). 0 without the accelerator."""
    if _tkv1 is None:
        return 0.0
    layout = layout_for(exp, None)
    salt, groups, threshold, one = exp.name_bytes, layout.slot_groups, layout.threshold, \
        _tkv1.assign_one

    def run() -> None:
        for key, _attributes in people:
            one(key, salt, groups, threshold, tuple)

    return timed("floor: one C call hashing the id (no gates)", len(people), run)


def targeted_case(keys: list[str], single: float) -> None:
    """The targeted, weighted flag in splitlab, Eppo and GrowthBook (see the module doc)."""
    from growthbook import GrowthBook

    from splitlab import resolve
    from splitlab.core.resolution import pure_resolve

    people = [(k, {"platform": PLATFORMS[i % 3], "edit_count": i % 4})
              for i, k in enumerate(keys)]
    row = {"name": NAME, "groups": ["control", "treatment"], "algorithm": "sl-v2",
           "user_identifier_type": "mw-user",
           "traffic_split": {"default": {"control": 10, "treatment": 30}},
           "targeting": {"platform": {"$in": ["desktop", "mobile"]}, "edit_count": {"$gte": 1}}}
    exp = Experiment.from_config(row)

    def run_splitlab() -> None:
        for key, attributes in people:
            resolve(key, exp, None, attributes)

    ours = timed("splitlab resolve, targeted + weighted", len(people), run_splitlab)
    floor = floor_rate(people, exp)

    def run_pure() -> None:
        for key, attributes in people:
            pure_resolve(key, exp, None, attributes)

    timed("splitlab resolve, pure Python (no compiler)", len(people), run_pure)
    conditions = [{"attribute": "platform", "operator": "ONE_OF", "value": ["desktop", "mobile"]},
                  {"attribute": "edit_count", "operator": "GTE", "value": 1}]
    get = eppo_client(False, (0, 1000, 4000), [{"conditions": conditions}])
    get_assignment = get.get_string_assignment  # type: ignore[attr-defined]

    def run_eppo() -> None:
        for key, attributes in people:
            get_assignment(NAME, key, attributes, "none")

    eppo = timed("Eppo get_string_assignment, targeted + weighted", len(people), run_eppo)
    rule: dict[str, object] = {
        "key": NAME, "variations": ["control", "treatment"], "weights": [0.25, 0.75],
        "coverage": 0.4, "hashAttribute": "id",
        "condition": {"platform": {"$in": ["desktop", "mobile"]}, "edit_count": {"$gte": 1}}}
    rates = []
    for label, extra in (("", {}), (", namespace", {"namespace": ["search-ui", 0, 0.5]})):
        gb = GrowthBook(attributes={}, features={"f": {"defaultValue": "none",
                                                       "rules": [{**rule, **extra}]}})
        few = people[: max(1, len(people) // 10)]

        def run_growthbook(gb: GrowthBook = gb, few: list[tuple[str, dict[str, object]]] = few,
                           ) -> None:
            for key, attributes in few:
                gb.set_attributes({"id": key, **attributes})
                gb.get_feature_value("f", "none")

        rates.append(timed(f"GrowthBook get_feature_value, targeted{label}", len(few),
                           run_growthbook))
    print(f"resolve (targeted) vs Eppo:       {ours / eppo:5.2f}x (target >= 3)")
    print(f"resolve (targeted) vs GrowthBook: {ours / max(rates):5.1f}x (target >= 25)")
    print(f"resolve (targeted) vs plain assign: {ours / single:5.2f}x")
    if floor:
        print(f"floor (one C call + SHA-256) vs Eppo: {floor / eppo:5.2f}x "
              f"(no resolve can exceed it); resolve is {floor / ours:4.2f}x the floor's time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300_000, help="identifiers per run")
    parser.add_argument("--bulk-n", type=int, default=2_000_000, help="identifiers for bulk")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    exp = Experiment.from_config(
        {"name": NAME, "groups": ["control", "treatment"], "sample_rate": {"default": 1},
         "user_identifier_type": "mw-user"}
    )
    keys = [str(10_000_000 + i) for i in range(args.n)]
    backend = f"C accelerator, SHA-256 from {_tkv1.BACKEND}" if ACCELERATED else "pure Python"
    print(f"cores usable: {len(os.sched_getaffinity(0))}; single-call runs over {args.n:,} ids")

    def bare_loop(ids: list[str]) -> Callable[[], object]:
        def run() -> None:
            for i in ids:
                hashlib.sha256((str(i) + NAME).encode()).hexdigest()

        return run

    def single_calls() -> None:
        for key in keys:
            assign(key, exp)

    bare = timed("bare sha256 hexdigest loop (floor)", len(keys), bare_loop(keys))
    single = timed(f"splitlab assign (single calls, {backend})", len(keys), single_calls)
    def pure_single_calls() -> None:
        for key in keys:
            pure_assign(key, exp)

    timed("splitlab assign, pure Python (no compiler)", len(keys), pure_single_calls)
    eppo = eppo_rate(keys, log=False)
    eppo_rate(keys, log=True)
    growthbook = growthbook_rate(keys[: max(1, args.n // 10)])

    big = [str(20_000_000 + i) for i in range(args.bulk_n)]
    print(f"bulk runs over {args.bulk_n:,} ids")
    bare_big = timed("bare sha256 hexdigest loop (floor)", len(big), bare_loop(big))
    one = timed(
        "splitlab assign_many, 1 process", len(big), lambda: assign_many(big, exp, workers=1)
    )
    every = timed("splitlab assign_many, every core", len(big), lambda: assign_many(big, exp))
    timed(
        "splitlab assign_many, pure Python, 1 process", len(big),
        lambda: pure_assign_batch(big, exp),
    )

    print(f"targeted, weighted flag over {args.n:,} ids")
    targeted_case(keys, single)

    print()
    print(f"assign vs Eppo (evaluation):   {single / eppo:5.2f}x (target > 1)")
    print(f"assign vs GrowthBook (faster): {single / growthbook:5.1f}x (target >= 15)")
    print(f"assign vs bare hash:           {bare / single:5.2f}x slower than the floor")
    print(f"assign_many 1 proc vs bare:    {bare_big / one:5.2f}x slower (target <= 1.5)")
    print(f"assign_many all cores vs bare: {bare_big / every:5.2f}x slower (< 1: faster)")


if __name__ == "__main__":
    main()
