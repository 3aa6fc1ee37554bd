"""The analysis SQL, written once in DuckDB's dialect (engines transpile it with sqlglot).

Tables: ``events`` (the materialised Parquet, each event once: :func:`deduplicated`);
``triggered`` (one row per ``subject_key``: the group, ``action_source``, site and time of its
first trigger event); ``units`` (``triggered``
plus ``mixed`` = 1 when the subject appears in more than one group, and one column per
:class:`~splitlab.analysis.metrics.Aggregate` of the catalog's declarative metrics).
"""

from __future__ import annotations

from collections.abc import Sequence

from splitlab.analysis.metrics import Aggregate

TRIGGERS = {"enrollment": "experiment_enrollment", "exposure": "experiment_exposure"}
DAY_US = 86_400_000_000


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def deduplicated(source: str, columns: Sequence[str]) -> str:
    """The rows of ``source`` with each event once: of the rows sharing ``event_id`` and
    ``experiment`` (a re-sent or re-delivered event), the earliest is kept, ties broken by the
    other columns so every engine keeps the same one; rows without an id are all kept."""
    names = ", ".join(columns)
    order = ", ".join(f"{c} NULLS FIRST" for c in columns if c not in ("event_id", "experiment"))
    return f"""
SELECT {names} FROM {source} WHERE event_id IS NULL
UNION ALL
SELECT {names} FROM (
  SELECT {names}, ROW_NUMBER() OVER (PARTITION BY event_id, experiment ORDER BY {order}) AS copy
  FROM {source} WHERE event_id IS NOT NULL
) WHERE copy = 1"""


def triggered(experiment: str, trigger: str) -> str:
    """One row per subject of ``experiment``: its first ``trigger`` event (ties in time broken
    by group, then action source, then site, nulls first, so every engine picks the same row)."""
    name, action = literal(experiment), literal(TRIGGERS[trigger])
    return f"""
SELECT subject_key, subject_id, variation, action_source, site, ts AS first_ts FROM (
  SELECT subject_key, subject_id, variation, action_source, site, ts,
         ROW_NUMBER() OVER (PARTITION BY subject_key ORDER BY ts, variation,
                            action_source NULLS FIRST, site NULLS FIRST) AS position
  FROM events
  WHERE experiment = {name} AND action = {action}
    AND subject_key IS NOT NULL AND variation IS NOT NULL AND ts IS NOT NULL
) WHERE position = 1"""


def units(experiment: str, aggregates: Sequence[Aggregate]) -> str:
    """``triggered`` plus ``mixed`` (1 when any of the subject's events of the experiment names
    another group than its first trigger event) and one column ``a<i>`` per aggregate, all in
    one pass over the events. Only events that are of another group or count towards some
    aggregate reach the (costly) per-subject grouping."""
    conditions = [_condition(a) for a in aggregates]
    columns = "".join(f",\n    {_aggregate_sql(a, c)} AS a{i}"
                      for i, (a, c) in enumerate(zip(aggregates, conditions, strict=True)))
    outer = "".join(f", CAST(COALESCE(s.a{i}, 0) AS DOUBLE) AS a{i}"
                    for i in range(len(aggregates)))
    relevant = " OR ".join(["e.variation <> u.variation", *(f"({c})" for c in conditions)])
    return f"""
SELECT t.subject_key, t.subject_id, t.variation, t.action_source, t.site, t.first_ts,
       COALESCE(s.mixed, 0) AS mixed{outer}
FROM triggered t LEFT JOIN (
  SELECT e.subject_key,
    MAX(CASE WHEN e.variation <> u.variation THEN 1 ELSE 0 END) AS mixed{columns}
  FROM events e JOIN triggered u ON e.subject_key = u.subject_key
  WHERE e.experiment = {literal(experiment)} AND ({relevant})
  GROUP BY e.subject_key
) s ON s.subject_key = t.subject_key"""


def counts(by: str | None) -> str:
    """Units per group (and ``mixed`` flag), optionally by a column of ``units`` or ``day``."""
    if by is None:
        return "SELECT variation, mixed, COUNT(*) FROM units GROUP BY variation, mixed"
    key = (f"CAST(FLOOR(first_ts / {DAY_US}) AS BIGINT)" if by == "day"
           else f"COALESCE({by}, '(none)')")
    return (f"SELECT variation, {key} AS key, COUNT(*) FROM units WHERE mixed = 0 "
            f"GROUP BY variation, {key}")


def moments(table: str, pairs: Sequence[tuple[str, str | None]]) -> str:
    """Per group, over unmixed units: ``n``, then for each ``(y, x)`` column pair ``AVG(y),
    VAR_SAMP(y), AVG(x), VAR_SAMP(x), COVAR_SAMP(y, x)`` (zeros when there is no ``x``)."""
    parts = ["variation", "COUNT(*)"]
    for y, x in pairs:
        parts += [f"AVG({y})", f"VAR_SAMP({y})"]
        parts += ([f"AVG({x})", f"VAR_SAMP({x})", f"COVAR_SAMP({y}, {x})"] if x
                  else ["0.0", "0.0", "0.0"])
    return f"SELECT {', '.join(parts)} FROM {table} WHERE mixed = 0 GROUP BY variation"


def template(sql: str, experiment: str) -> str:
    """A SQL metric's rows, restricted to unmixed units of the group they were counted in."""
    body = (sql.replace("{events}", "events").replace("{units}", "units")
            .replace("{experiment}", literal(experiment)))
    return f"""
SELECT t.variation, t.subject_id, CAST(t.outcome AS DOUBLE) AS outcome, u.mixed
FROM ({body}) t JOIN units u ON u.subject_id = t.subject_id AND u.variation = t.variation"""


def _condition(aggregate: Aggregate) -> str:
    """Whether event ``e`` counts towards ``aggregate`` for unit ``u``."""
    if aggregate.pre_days > 0:
        window = (f"e.ts >= u.first_ts - {aggregate.pre_days * DAY_US} "
                  "AND e.ts < u.first_ts")
    else:
        window = "e.ts >= u.first_ts"
    return " AND ".join([window] + [
        f"e.{column} IN ({', '.join(literal(v) for v in values)})"
        for column, values in aggregate.filter
    ])


def _aggregate_sql(aggregate: Aggregate, matched: str) -> str:
    if aggregate.kind == "sum":
        return f"SUM(CASE WHEN {matched} THEN COALESCE(e.value, 0) ELSE 0 END)"
    if aggregate.kind == "proportion":
        return f"MAX(CASE WHEN {matched} THEN 1 ELSE 0 END)"
    return f"SUM(CASE WHEN {matched} THEN 1 ELSE 0 END)"
