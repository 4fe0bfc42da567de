"""What a dashboard's panels get from Prometheus: every panel query sent as Grafana sends it (variables at
"All", built-ins for the range), range queries on the panel's time grid for graphs and heatmaps, instant
queries for stats and tables, and the rows Grafana's table transformations make of the answers."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from llmobs.dashboards.lint import dashboard_queries
from llmobs.dashboards.live import LIVE_BUILTINS, instant_query, range_query, substitute_live, variable_values

SCRAPE_INTERVAL_S = 15          # the lab's (and Grafana's timeInterval default in the provisioning)
MAX_POINTS = 240                # Grafana asks for about one point per pixel; a preview needs fewer
INSTANT_PANELS = frozenset({"stat", "gauge", "bargauge", "table"})
_LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def legend_name(legend_format: str | None, labels: dict[str, str], expr: str) -> str:
    """The series name Grafana shows: the legend format filled in, or with `__auto` the labels (the
    query itself for a series without labels)."""
    if legend_format and legend_format != "__auto":
        return _LEGEND_LABEL.sub(lambda match: labels.get(match.group(1), ""), legend_format).strip()
    shown = {name: value for name, value in labels.items() if name != "__name__"}
    if not shown:
        return labels.get("__name__", expr)
    return labels.get("__name__", "") + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"


@dataclass(frozen=True)
class Series:
    """One series of a panel, its values on the panel's time grid (NaN where Prometheus had none)."""

    name: str
    labels: dict[str, str]
    ref: str
    values: tuple[float, ...]


@dataclass
class PanelData:
    """A panel and what its queries returned on its time grid (one point for an instant panel)."""

    panel: dict[str, Any]
    times: tuple[float, ...]
    series: list[Series] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def time_grid(range_s: float, end: float) -> tuple[float, ...]:
    """The query_range timestamps: Grafana's step (at least one scrape interval, at most MAX_POINTS
    points), aligned to a multiple of the step as Grafana aligns its queries."""
    step = max(SCRAPE_INTERVAL_S, math.ceil(range_s / MAX_POINTS / SCRAPE_INTERVAL_S) * SCRAPE_INTERVAL_S)
    last = math.floor(end / step) * step
    return tuple(last - step * i for i in range(int(range_s // step), -1, -1))


def builtins_for(range_s: float, step: float) -> dict[str, str]:
    """Grafana's built-in variables for this range and step ($__rate_interval: at least four scrapes)."""
    rate_interval = max(step + SCRAPE_INTERVAL_S, 4 * SCRAPE_INTERVAL_S)
    return {**LIVE_BUILTINS, "__interval": f"{step:g}s", "__interval_ms": f"{step * 1000:g}",
            "__rate_interval": f"{rate_interval:g}s", "__range": f"{range_s:g}s", "__range_s": f"{range_s:g}",
            "__range_ms": f"{range_s * 1000:g}"}


def panel_data(dashboard: dict[str, Any], prometheus_url: str, range_s: float, end: float) -> dict[int, PanelData]:
    """Every panel's series by panel id: range queries on the time grid for time series and heatmaps,
    instant queries at the end of the range for stats and tables."""
    times = time_grid(range_s, end)
    step = times[1] - times[0] if len(times) > 1 else range_s
    values = {**variable_values(dashboard), **builtins_for(range_s, step)}
    data: dict[int, PanelData] = {}
    for panel, query in dashboard_queries(dashboard):
        instant = panel.get("type") in INSTANT_PANELS
        panel_data = data.setdefault(panel["id"], PanelData(panel, (times[-1],) if instant else times))
        target = next(t for t in panel["targets"] if t.get("refId") == query.ref)
        expr = substitute_live(query.expr, values)
        try:
            if instant:
                results = instant_query(prometheus_url, expr, at=times[-1])
            else:
                results = range_query(prometheus_url, expr, times[0], times[-1], step)
        except (OSError, RuntimeError) as error:
            panel_data.errors.append(f"{query.ref}: {error}")
            continue
        for result in results:
            # A scalar answer is a bare [time, value], without labels.
            labels, points = ({}, [result]) if isinstance(result, list) else (
                result.get("metric", {}), result.get("values") or [result["value"]])
            by_time = {round(float(t)): float(v) for t, v in points}
            panel_data.series.append(Series(
                legend_name(target.get("legendFormat"), labels, expr), labels, query.ref,
                tuple(by_time.get(round(t), math.nan) for t in panel_data.times)))
    return data


def table_frame(panel: dict[str, Any], series: Iterable[Series]) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) of a table panel: one row per label set, a value column per query ("Value", or
    "Value #<ref>" with several queries, as Grafana names them), the queries merged on their labels (the
    metric name and Time are left out), then the panel's `organize` transformation applied."""
    several = len(panel.get("targets", [])) > 1
    rows: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    label_names: set[str] = set()
    value_names: list[str] = []
    for one in series:
        labels = {name: value for name, value in one.labels.items() if name != "__name__"}
        label_names.update(labels)
        value_name = f"Value #{one.ref}" if several else "Value"
        if value_name not in value_names:
            value_names.append(value_name)
        rows.setdefault(tuple(sorted(labels.items())), dict(labels))[value_name] = one.values[-1]
    columns = sorted(label_names) + value_names
    for transformation in panel.get("transformations", []):
        if transformation.get("id") != "organize":
            continue
        options = transformation.get("options", {})
        excluded = {name for name, hidden in options.get("excludeByName", {}).items() if hidden}
        order = options.get("indexByName", {})
        columns = sorted((c for c in columns if c not in excluded), key=lambda c: order.get(c, len(order)))
        renames = options.get("renameByName", {})
        rows = {key: {renames.get(name, name): value for name, value in row.items()} for key, row in rows.items()}
        columns = [renames.get(column, column) for column in columns]
    return columns, list(rows.values())
