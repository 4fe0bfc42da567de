"""The queries the benchmark times: every panel target of the kit's five dashboards as Grafana sends it, and
the same questions asked the way the official dashboards ask them (vLLM's Overview and Performance
dashboards, NVIDIA's dcgm-exporter dashboard 12239: raw histogram_quantile over buckets, raw rates)."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from llmobs import http
from llmobs.fleetbench.tsdb import Prometheus

MAX_DATA_POINTS = 1000     # about a full-width panel's pixels, what Grafana sends as maxDataPoints
MIN_INTERVAL_S = 15.0      # the datasource's timeInterval (grafana/provisioning/datasources/llmobs.yaml)
# Grafana's roundInterval (public/app/core/utils/kbn.ts): the step it picks for a raw interval (s).
ROUND_INTERVAL = ((7.5, 5), (12.5, 10), (17.5, 15), (25, 20), (45, 30), (90, 60), (210, 120), (450, 300),
                  (750, 600), (1050, 900), (1500, 1200), (2700, 1800), (5400, 3600), (9000, 7200))


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    expr: str
    instant: bool
    range_s: float


def grafana_step(range_s: float) -> float:
    raw = range_s / MAX_DATA_POINTS
    step = next((nice for limit, nice in ROUND_INTERVAL if raw < limit), 10800)
    return max(step, MIN_INTERVAL_S)


def interpolate(expr: str, values: dict[str, str], range_s: float, scrape_s: float = MIN_INTERVAL_S) -> str:
    """The expression as Grafana sends it: template variables, $__rate_interval, $__interval, $__range."""
    step = grafana_step(range_s)
    builtins = {"__rate_interval": f"{int(max(step + scrape_s, 4 * scrape_s))}s", "__interval": f"{int(step)}s",
                "__range": f"{int(range_s)}s", "__range_s": str(int(range_s))}
    merged = {**values, **builtins}

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return merged.get(name, ".*")
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def panel_queries(dashboards: dict[str, dict[str, Any]], one_host: str, ranges: tuple[str, ...]) -> list[Query]:
    """Every target of every panel, at the dashboard's default range and the other `ranges` ("24h").
    Multi-value variables are "All" (`.*`); the GPU-node dashboard looks at `one_host`."""
    found = []
    for uid, board in dashboards.items():
        values = {var["name"]: str(var.get("query", "")) for var in board.get("templating", {}).get("list", [])
                  if var.get("type") == "constant"}
        if "gpu-node" in uid:
            values["host"] = one_host
        default = _duration(board["time"]["from"].removeprefix("now-"))
        spans = sorted({default, *(_duration(r) for r in ranges)})
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                if not target.get("expr"):
                    continue
                instant = bool(target.get("instant")) and not target.get("range")
                for span in spans:
                    found.append(Query(uid, panel.get("title", "?"), interpolate(target["expr"], values, span),
                                       instant, span))
    return found


def _duration(text: str) -> float:
    return float(text[:-1]) * {"m": 60, "h": 3600, "d": 86400}[text[-1]]


# The same question asked by the official dashboards (raw) and by ours (recording rules). The official
# expressions are those of vllm-project/vllm examples/observability (grafana.json, performance_statistics.json)
# and grafana.com dashboard 12239, with their variables set to "All".
QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("TTFT p95 by model",
     'histogram_quantile(0.95, sum by (le, model_name) (rate(vllm:time_to_first_token_seconds_bucket[{ri}])))',
     'model:vllm_time_to_first_token_seconds:histogram_quantile5m{{quantile="0.95"}}'),
    ("E2E latency p95 by model",
     'histogram_quantile(0.95, sum by (le, model_name) (rate(vllm:e2e_request_latency_seconds_bucket[{ri}])))',
     'model:vllm_e2e_request_latency_seconds:histogram_quantile5m{{quantile="0.95"}}'),
    ("inter-token latency p95 by model",
     'histogram_quantile(0.95, sum by (le, model_name) (rate(vllm:inter_token_latency_seconds_bucket[{ri}])))',
     'model:vllm_inter_token_latency_seconds:histogram_quantile5m{{quantile="0.95"}}'),
    ("queue time p95 by model",
     'histogram_quantile(0.95, sum by (le, model_name) (rate(vllm:request_queue_time_seconds_bucket[{ri}])))',
     'model:vllm_request_queue_time_seconds:histogram_quantile5m{{quantile="0.95"}}'),
    ("generation tokens/s by model",
     'sum by (model_name) (rate(vllm:generation_tokens_total[{ri}]))', "model:vllm_generation_tokens:rate5m"),
    ("prompt tokens/s by model",
     'sum by (model_name) (rate(vllm:prompt_tokens_total[{ri}]))', "model:vllm_prompt_tokens:rate5m"),
    ("requests/s by model", 'sum by (model_name) (rate(vllm:request_success_total[{ri}]))',
     "model:vllm_requests:rate5m"),
    ("KV cache usage by model", "max by (model_name) (vllm:kv_cache_usage_perc)", "model:vllm_kv_cache_usage:max"),
    ("fleet GPU utilization", 'avg(DCGM_FI_DEV_GPU_UTIL{{instance=~".*", gpu=~".*"}})',
     "fleet:dcgm_gpu_utilization:avg"),
    ("fleet GPU power", 'sum(DCGM_FI_DEV_POWER_USAGE{{instance=~".*", gpu=~".*"}})',
     "fleet:dcgm_power_usage_watts:sum"),
    ("hottest GPU", 'max(DCGM_FI_DEV_GPU_TEMP{{instance=~".*", gpu=~".*"}})', "fleet:dcgm_gpu_temp:max"),
)


def official_queries(range_s: float) -> list[tuple[str, str, str]]:
    ri = f"{int(max(grafana_step(range_s) + MIN_INTERVAL_S, 4 * MIN_INTERVAL_S))}s"
    return [(question, raw.format(ri=ri), ours.format()) for question, raw, ours in QUESTIONS]


@dataclass
class Timing:
    p50_ms: float
    p95_ms: float
    series: int
    error: str = ""


def timed(prometheus: Prometheus, expr: str, instant: bool, range_s: float, start: float, end: float,
          repeat: int) -> Timing:
    """p50 and p95 wall time of the query as Grafana sends it (POST, range clamped to the data's span)."""
    step = grafana_step(range_s)
    begin = max(start, end - range_s)
    path = "api/v1/query" if instant else "api/v1/query_range"
    form = {"query": expr, "time": end} if instant else {"query": expr, "start": begin, "end": end, "step": step}
    body = http.urllib.parse.urlencode(form).encode()
    times, series, error = [], 0, ""
    for _ in range(repeat):
        began = time.perf_counter()
        answer = http.request(f"{prometheus.url}/{path}", "POST", body, timeout=600, check=False)
        times.append((time.perf_counter() - began) * 1000)
        if answer.status != 200:
            error = answer.text[:200]
            break
        series = len(answer.json()["data"]["result"])
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return Timing(statistics.median(times), p95, series, error)
