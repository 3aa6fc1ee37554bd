"""A second, independent implementation of the core analysis in plain pandas + scipy.stats.

It shares no code with ``splitlab.analysis``: it reads the materialised Parquet files itself
and follows the documented rules (first enrollment per subject, ties by group, source, site;
subjects seen in more than one group excluded; SRM by ``scipy.stats.chisquare``; a count and
a proportion metric compared by ``scipy.stats.ttest_ind(equal_var=False)``). Tests use it as an
oracle for the engines; ``benchmarks/analysis.py`` uses it as the pandas baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

COLUMNS = ["ts", "action", "action_source", "site", "experiment", "variation", "subject_id"]


def load(directory: Path) -> pd.DataFrame:
    """Every materialised event under ``directory`` (the columns the analysis needs)."""
    frames = [pd.read_parquet(p, columns=COLUMNS) for p in sorted(directory.rglob("*.parquet"))]
    return pd.concat(frames, ignore_index=True)


def analyse(events: pd.DataFrame, experiment: str) -> dict[str, Any]:
    """Units per group, mixed units, SRM (equal split), and two metrics per group."""
    mine = events[(events["experiment"] == experiment) & events["subject_id"].notna()
                  & events["variation"].notna()]
    spread = mine.groupby("subject_id")["variation"].nunique()
    mixed = set(spread.index[spread > 1])
    enrollments = mine[mine["action"] == "experiment_enrollment"]
    order = ["subject_id", "ts", "variation", "action_source", "site"]
    first = (enrollments.sort_values(order, na_position="first")
             .drop_duplicates("subject_id", keep="first"))
    units = first[~first["subject_id"].isin(mixed)][["subject_id", "variation", "ts"]]
    units = units.rename(columns={"ts": "first_ts"})
    counts = units["variation"].value_counts().sort_index()
    groups = sorted(counts.index, key=lambda g: (g != "control", g))
    observed = [int(counts[g]) for g in groups]
    srm = stats.chisquare(observed)
    joined = mine[mine["action"].isin(["click", "edit_saved"])].merge(units, on="subject_id")
    after = joined[joined["ts"] >= joined["first_ts"]]
    clicks = after[after["action"] == "click"].groupby("subject_id").size()
    edited = set(after.loc[after["action"] == "edit_saved", "subject_id"])
    per_unit = units.set_index("subject_id")
    per_unit["clicks"] = clicks.reindex(per_unit.index, fill_value=0).astype(float)
    per_unit["edited"] = per_unit.index.isin(edited).astype(float)
    metrics: dict[str, dict[str, Any]] = {}
    for metric in ("clicks", "edited"):
        by_group = {g: per_unit.loc[per_unit["variation"] == g, metric] for g in groups}
        result: dict[str, Any] = {g: {"n": len(v), "mean": float(v.mean())}
                                  for g, v in by_group.items()}
        for g in groups[1:]:
            test = stats.ttest_ind(by_group[g], by_group[groups[0]], equal_var=False)
            result[g]["p_value"] = float(test.pvalue)
            result[g]["effect"] = result[g]["mean"] - result[groups[0]]["mean"]
        metrics[metric] = result
    return {
        "groups": dict(zip(groups, observed, strict=True)),
        "units_in_multiple_groups": int(first["subject_id"].isin(mixed).sum()),
        "srm_p_value": float(srm.pvalue),
        "metrics": metrics,
    }
