"""Probe dashboards against a live Prometheus: which panels would show "No data" right now?

Each query is sent as Grafana would send it with every variable at "All" (its `allValue`), constants at
their value and $__rate_interval at four scrape intervals, as an instant query.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from llmobs.dashboards.lint import VARIABLE_PATTERN, dashboard_queries, variable_queries

# What Grafana sends for its built-ins on a one-hour dashboard with a 15 s scrape interval.
LIVE_BUILTINS = {
    "__rate_interval": "1m", "__interval": "15s", "__range": "1h",
    "__interval_ms": "15000", "__range_s": "3600", "__range_ms": "3600000",
}


@dataclass(frozen=True)
class LiveQuery:
    dashboard: str
    panel: str
    ref: str
    expr: str


def variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """The value each variable takes: 'All' (allValue) for multi-value ones, the constant's value."""
    values = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("includeAll"):
            values[variable["name"]] = variable.get("allValue") or ".*"
        elif variable.get("type") == "constant":
            values[variable["name"]] = str(variable.get("query", ""))
    return values


def substitute_live(expr: str, values: Mapping[str, str]) -> str:
    """The expression as Grafana sends it: every variable replaced by its value in `values`."""

    def substitute(match: Any) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"no live value for variable ${name}")
        return values[name]

    return VARIABLE_PATTERN.sub(substitute, expr)


def live_queries(dashboard: dict[str, Any]) -> Iterator[LiveQuery]:
    """The variables' label_values selectors, then every panel query, ready to send to Prometheus."""
    values = {**variable_values(dashboard), **LIVE_BUILTINS}
    queries = [*variable_queries(dashboard), *(query for _panel, query in dashboard_queries(dashboard))]
    for query in queries:
        yield LiveQuery(query.dashboard, query.panel, query.ref, substitute_live(query.expr, values))


def _api(prometheus_url: str, endpoint: str, params: dict[str, str], timeout: float) -> list[dict[str, Any]]:
    """The result of a Prometheus query API call; raises on an HTTP or query error."""
    url = f"{prometheus_url.rstrip('/')}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"query failed: {body.get('error')}: {params['query']}")
    result = body["data"]["result"]
    # A scalar result (e.g. from vector arithmetic on literals) is data too.
    return result if isinstance(result, list) else [result]


def instant_query(prometheus_url: str, expr: str, timeout: float = 10.0,
                  at: float | None = None) -> list[dict[str, Any]]:
    """The result vector of an instant query (now, or at the Unix time `at`)."""
    return _api(prometheus_url, "query", {"query": expr, **({"time": f"{at:.3f}"} if at else {})}, timeout)


def range_query(prometheus_url: str, expr: str, start: float, end: float, step: float,
                timeout: float = 10.0) -> list[dict[str, Any]]:
    """The result matrix of a range query from `start` to `end` (Unix times) every `step` seconds."""
    params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    return _api(prometheus_url, "query_range", params, timeout)


def empty_queries(prometheus_url: str, dashboards: list[dict[str, Any]]) -> list[LiveQuery]:
    """Every query of these dashboards that returns no series now."""
    return [query for dashboard in dashboards for query in live_queries(dashboard)
            if not instant_query(prometheus_url, query.expr)]
