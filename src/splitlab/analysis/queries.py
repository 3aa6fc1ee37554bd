"""The analysis SQL, written once in DuckDB's dialect (engines transpile it with sqlglot).

Tables: ``events`` (the materialised Parquet), ``units`` (one row per ``subject_key``: its
group, the ``action_source``, site and time of its first trigger event, and ``mixed`` = 1 when
the subject appears in more than one group) and ``outcomes`` (one row per unmixed unit: its
group and one column per :class:`~splitlab.analysis.metrics.Aggregate`).
"""

from __future__ import annotations

from collections.abc import Sequence

from splitlab.analysis.metrics import Aggregate

TRIGGERS = {"enrollment": "experiment_enrollment", "exposure": "experiment_exposure"}
DAY_US = 86_400_000_000


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def units(experiment: str, trigger: str) -> str:
    """One row per subject of ``experiment``, from its first ``trigger`` event, flagged
    ``mixed`` when any of its events name more than one group.

    Subjects are keyed by ``subject_key``. Ties in time are broken by group, then action
    source, then site, so every engine picks the same row.
    """
    name, action = literal(experiment), literal(TRIGGERS[trigger])
    return f"""
WITH triggered AS (
  SELECT subject_key, subject_id, variation, action_source, site, ts,
         ROW_NUMBER() OVER (PARTITION BY subject_key ORDER BY ts, variation,
                            COALESCE(action_source, ''), COALESCE(site, '')) AS position
  FROM events
  WHERE experiment = {name} AND action = {action}
    AND subject_key IS NOT NULL AND variation IS NOT NULL
), mixed AS (
  SELECT subject_key FROM events
  WHERE experiment = {name} AND subject_key IS NOT NULL AND variation IS NOT NULL
  GROUP BY subject_key
  HAVING MIN(variation) <> MAX(variation)
)
SELECT t.subject_key, t.subject_id, t.variation, t.action_source, t.site, t.ts AS first_ts,
       CASE WHEN m.subject_key IS NULL THEN 0 ELSE 1 END AS mixed
FROM triggered t LEFT JOIN mixed m ON t.subject_key = m.subject_key
WHERE t.position = 1"""


def counts(by: str | None) -> str:
    """Units per group (and ``mixed`` flag), optionally by a column of ``units`` or ``day``."""
    if by is None:
        return "SELECT variation, mixed, COUNT(*) FROM units GROUP BY variation, mixed"
    key = (f"CAST(FLOOR(first_ts / {DAY_US}) AS BIGINT)" if by == "day"
           else f"COALESCE({by}, '(none)')")
    return (f"SELECT variation, {key} AS key, COUNT(*) FROM units WHERE mixed = 0 "
            f"GROUP BY variation, {key}")


def outcomes(experiment: str, aggregates: Sequence[Aggregate]) -> str:
    """Per unmixed unit, one column ``a<i>`` per aggregate (0 when the unit has no event)."""
    columns = [_aggregate_sql(a) + f" AS a{i}" for i, a in enumerate(aggregates)]
    outer = [f"CAST(COALESCE(s.a{i}, 0) AS DOUBLE) AS a{i}" for i in range(len(aggregates))]
    return f"""
SELECT u.variation, u.subject_key, {", ".join(outer)}
FROM units u LEFT JOIN (
  SELECT e.subject_key, {", ".join(columns)}
  FROM events e JOIN units u ON e.subject_key = u.subject_key
  WHERE e.experiment = {literal(experiment)} AND u.mixed = 0
  GROUP BY e.subject_key
) s ON s.subject_key = u.subject_key
WHERE u.mixed = 0"""


def moments(table: str, pairs: Sequence[tuple[str, str | None]]) -> str:
    """Per group: ``n``, then for each ``(y, x)`` column pair ``AVG(y), VAR_SAMP(y), AVG(x),
    VAR_SAMP(x), COVAR_SAMP(y, x)`` (zeros when there is no ``x``)."""
    parts = ["variation", "COUNT(*)"]
    for y, x in pairs:
        parts += [f"AVG({y})", f"VAR_SAMP({y})"]
        parts += ([f"AVG({x})", f"VAR_SAMP({x})", f"COVAR_SAMP({y}, {x})"] if x
                  else ["0.0", "0.0", "0.0"])
    return f"SELECT {', '.join(parts)} FROM {table} GROUP BY variation"


def template(sql: str, experiment: str) -> str:
    """A SQL metric's rows, restricted to unmixed units of the group they were counted in."""
    body = sql.format(events="events", units="units", experiment=literal(experiment))
    return f"""
SELECT t.variation, t.subject_id, CAST(t.outcome AS DOUBLE) AS outcome
FROM ({body}) t JOIN units u ON u.subject_id = t.subject_id AND u.variation = t.variation
WHERE u.mixed = 0"""


def _aggregate_sql(aggregate: Aggregate) -> str:
    if aggregate.pre_days > 0:
        window = (f"e.ts >= u.first_ts - {aggregate.pre_days * DAY_US} "
                  "AND e.ts < u.first_ts")
    else:
        window = "e.ts >= u.first_ts"
    conditions = [window] + [
        f"e.{column} IN ({', '.join(literal(v) for v in values)})"
        for column, values in aggregate.filter
    ]
    matched = " AND ".join(conditions)
    if aggregate.kind == "sum":
        return f"SUM(CASE WHEN {matched} THEN COALESCE(e.value, 0) ELSE 0 END)"
    if aggregate.kind == "proportion":
        return f"MAX(CASE WHEN {matched} THEN 1 ELSE 0 END)"
    return f"SUM(CASE WHEN {matched} THEN 1 ELSE 0 END)"
