"""A :class:`~splitlab.analysis.analyze.Report` as JSON, terminal text, or a self-contained HTML
page with inline SVG plots (no scripts, fonts or styles from elsewhere: it opens offline)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from html import escape
from typing import Any

from splitlab.analysis.analyze import MetricResult, Report

REPORT_VERSION = 1
_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")


def to_dict(report: Report) -> dict[str, Any]:
    """The JSON form: field names are stable (``docs/analysis.md``); NaN and ±inf become null."""
    return {"report_version": REPORT_VERSION, **_clean(asdict(report))}


def to_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, allow_nan=False)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def _interval(ci: tuple[float, float] | None, percent: bool = False) -> str:
    if ci is None:
        return "-"
    if percent:
        return f"[{ci[0]:+.2%}, {ci[1]:+.2%}]"
    return f"[{_number(ci[0])}, {_number(ci[1])}]"


def to_text(report: Report) -> str:
    """A plain-text summary for a terminal."""
    srm = report.srm
    lines = [
        f"experiment {report.experiment}  (engine {report.engine}, first {report.trigger})",
        f"units: {report.units_total:,} ({report.units_in_multiple_groups:,} seen in more than "
        "one group, excluded)",
        "",
        f"{'group':<20} {'units':>12} {'observed':>9} {'expected':>9}",
    ]
    for group, units in report.groups.items():
        lines.append(f"{group:<20} {units:>12,} {srm.observed[group]:>9.2%} "
                     f"{srm.expected[group]:>9.2%}")
    verdict = "SAMPLE RATIO MISMATCH" if srm.flagged else "no sample ratio mismatch"
    if srm.p_value is None:
        lines += ["", f"SRM: not tested: {srm.note}"]
    else:
        lines += ["", f"SRM: chi-square {_number(srm.statistic)} (df {srm.df}), p = "
                  f"{_number(srm.p_value)} -> {verdict} at alpha {srm.alpha:g}"]
    for metric in report.metrics:
        lines += ["", f"metric {metric.name} ({metric.kind}{', CUPED' if metric.cuped else ''})"]
        lines.append(f"  {'group':<18} {'n':>10} {'mean':>11} {'effect':>11} {'relative':>9} "
                     f"{'relative CI':>20} {'p':>9} {'p adj':>9}")
        for g in metric.groups:
            relative = "-" if g.relative_effect is None else f"{g.relative_effect:+.2%}"
            lines.append(
                f"  {g.group:<18} {g.n:>10,} {_number(g.mean):>11} {_number(g.effect):>11} "
                f"{relative:>9} {_interval(g.relative_ci, True):>20} {_number(g.p_value):>9} "
                f"{_number(g.p_value_adjusted):>9}"
            )
        if metric.error:
            lines.append(f"  error: {metric.error}")
    return "\n".join(lines) + "\n"


def to_html(report: Report) -> str:
    """One HTML page: counts, the SRM verdict, units per group over time, metric effects."""
    srm = report.srm
    verdict = ("<p class=bad>Sample ratio mismatch: do not trust the effects below.</p>"
               if srm.flagged else "<p class=good>No sample ratio mismatch.</p>")
    if srm.p_value is None:
        verdict = f"<p>Not tested: {escape(srm.note or '')}.</p>"
    rows = "".join(
        f"<tr><td>{escape(g)}</td><td>{n:,}</td><td>{srm.observed[g]:.2%}</td>"
        f"<td>{srm.expected[g]:.2%}</td></tr>" for g, n in report.groups.items()
    )
    sections = [
        f"<h1>{escape(report.experiment)}</h1>",
        f"<p>Engine {escape(report.engine)}; units counted at their first "
        f"{escape(report.trigger)}; {report.units_total:,} units, "
        f"{report.units_in_multiple_groups:,} seen in more than one group (excluded).</p>",
        "<table><tr><th>group</th><th>units</th><th>observed</th><th>expected</th></tr>"
        f"{rows}</table>",
        f"<p>Chi-square {_number(srm.statistic)} (df {srm.df}), p = {_number(srm.p_value)}, "
        f"alpha {srm.alpha:g}.</p>{verdict}",
        "<h2>Units per group over time (cumulative)</h2>", _units_svg(report),
    ]
    for metric in report.metrics:
        sections += [f"<h2>{escape(metric.name)} <small>({escape(metric.kind)}"
                     f"{', CUPED' if metric.cuped else ''})</small></h2>",
                     _metric_table(metric), _effect_svg(metric)]
        if metric.error:
            sections.append(f"<p class=bad>Not computed: {escape(metric.error)}.</p>")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>splitlab: {escape(report.experiment)}</title><style>"
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;"
        "text-align:right}td:first-child,th:first-child{text-align:left}"
        ".bad{color:#b00;font-weight:bold}.good{color:#070}svg{display:block;margin:1em 0}"
        "</style></head><body>" + "\n".join(sections) + "</body></html>\n"
    )


def _metric_table(metric: MetricResult) -> str:
    head = ("<tr><th>group</th><th>n</th><th>mean</th><th>effect</th><th>CI</th>"
            "<th>relative</th><th>relative CI</th><th>p</th><th>p adjusted</th></tr>")
    rows = "".join(
        f"<tr><td>{escape(g.group)}</td><td>{g.n:,}</td><td>{_number(g.mean)}</td>"
        f"<td>{_number(g.effect)}</td><td>{_interval(g.ci)}</td>"
        f"<td>{'-' if g.relative_effect is None else f'{g.relative_effect:+.2%}'}</td>"
        f"<td>{_interval(g.relative_ci, True)}</td><td>{_number(g.p_value)}</td>"
        f"<td>{_number(g.p_value_adjusted)}</td></tr>" for g in metric.groups
    )
    return f"<table>{head}{rows}</table>"


def _units_svg(report: Report, width: int = 640, height: int = 240) -> str:
    days = sorted(report.by_day)
    if not days:
        return "<p>No dated units.</p>"
    totals: dict[str, list[int]] = {}
    for group in report.groups:
        running, series = 0, []
        for day in days:
            running += report.by_day[day].get(group, 0)
            series.append(running)
        totals[group] = series
    top = max(max(s) for s in totals.values()) or 1
    left, bottom = 60, height - 30

    def x(i: int) -> float:
        return left + (width - left - 10) * (i / max(1, len(days) - 1))

    def y(v: float) -> float:
        return bottom - (bottom - 10) * v / top

    parts = [f'<line x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}" stroke="#999"/>',
             f'<text x="{left - 5}" y="{y(top) + 4:.1f}" text-anchor="end">{top:,}</text>',
             f'<text x="{left}" y="{height - 10}">{escape(days[0])}</text>',
             f'<text x="{width - 10}" y="{height - 10}" text-anchor="end">{escape(days[-1])}'
             "</text>"]
    for k, (group, series) in enumerate(totals.items()):
        colour = _COLOURS[k % len(_COLOURS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(series))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{points}"/>')
        parts.append(f'<text x="{left + 10}" y="{20 + 16 * k}" fill="{colour}">'
                     f"{escape(group)}</text>")
    return _svg(width, height, parts, "Cumulative units per group by day")


def _effect_svg(metric: MetricResult, width: int = 640) -> str:
    """Relative effect of each treatment group with its interval, around a zero line."""
    treated = [g for g in metric.groups if g.relative_ci is not None
               and g.relative_effect is not None and all(map(math.isfinite, g.relative_ci))]
    if not treated:
        return ""
    bound = max(abs(v) for g in treated for v in g.relative_ci or ()) or 0.01
    height, left, right = 30 + 30 * len(treated), 140, width - 20

    def x(v: float) -> float:
        return left + (right - left) * (v + bound * 1.1) / (2.2 * bound)

    parts = [f'<line x1="{x(0):.1f}" y1="5" x2="{x(0):.1f}" y2="{height - 20}" stroke="#999"/>',
             f'<text x="{left}" y="{height - 5}">{-bound * 1.1:+.1%}</text>',
             f'<text x="{right}" y="{height - 5}" text-anchor="end">{bound * 1.1:+.1%}</text>']
    for k, g in enumerate(treated):
        assert g.relative_ci is not None and g.relative_effect is not None
        row = 20 + 30 * k
        low, high = g.relative_ci
        parts += [f'<text x="5" y="{row + 4}">{escape(g.group)}</text>',
                  f'<line x1="{x(low):.1f}" y1="{row}" x2="{x(high):.1f}" y2="{row}" '
                  'stroke="#4c72b0" stroke-width="3"/>',
                  f'<circle cx="{x(g.relative_effect):.1f}" cy="{row}" r="5" fill="#dd8452"/>']
    return _svg(width, height, parts, f"Relative effect on {metric.name} with its interval")


def _svg(width: int, height: int, parts: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" font-size="12"><title>{escape(title)}</title>{"".join(parts)}</svg>')
