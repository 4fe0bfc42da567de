"""The official dashboards' own queries return data against the lab on Prometheus 3.5: a user who imports
vLLM's Overview and Performance dashboards, NVIDIA's dcgm-exporter dashboard (grafana.com 12239) or SGLang's
dashboard beside the kit's sees the lab's simulated engines and GPUs there too.

The vLLM and dcgm-exporter expressions are those the fleet benchmark compares the kit's against
(llmobs.fleetbench.queries.QUESTIONS); SGLang's are its dashboard's panels (docs/engines-upstream.md §1.7),
with $__rate_interval as Grafana sets it for the lab's 10 s scrape interval (4 x 15 s) and $model_name at the
lab's SGLang model.
"""

from __future__ import annotations

import time

import pytest

from llmobs import http
from llmobs.fleetbench.queries import official_queries

pytestmark = [pytest.mark.docker, pytest.mark.lab]

RATE_INTERVAL = "1m"
SGLANG_MODEL = "deepseek-r1-distill-llama-8b"   # compose/lab-settings.yml
SGLANG_DASHBOARD = {
    "End-to-End Request Latency P99": "histogram_quantile(0.99, sum by (le) "
                                      "(rate(sglang:e2e_request_latency_seconds_bucket[$__rate_interval])))",
    "End-to-End Request Latency (Avg)": "avg(rate(sglang:e2e_request_latency_seconds_sum[$__rate_interval]) / "
                                        "rate(sglang:e2e_request_latency_seconds_count[$__rate_interval]))",
    "End-to-End Request Latency Heatmap": 'sum(increase(sglang:e2e_request_latency_seconds_bucket'
                                          '{model_name=~"$model_name"}[$__rate_interval])) by (le)',
    "Time-To-First-Token Latency P99": "histogram_quantile(0.99, sum by (le) "
                                       "(rate(sglang:time_to_first_token_seconds_bucket[$__rate_interval])))",
    "Time-To-First-Token Latency (Avg)": "avg(rate(sglang:time_to_first_token_seconds_sum[$__rate_interval]) / "
                                         "rate(sglang:time_to_first_token_seconds_count[$__rate_interval]))",
    "Time-To-First-Token Heatmap": 'sum by(le) (increase(sglang:time_to_first_token_seconds_bucket'
                                   '{model_name=~"$model_name"}[$__rate_interval]))',
    "Num Running Requests": "sglang:num_running_reqs",
    "Token Generation Throughput": "sglang:gen_throughput",
    "Cache Hit Rate": "sglang:cache_hit_rate",
    "Number Queued Requests": "sglang:num_queue_reqs",
}


def _official() -> dict[str, str]:
    """{dashboard / question: PromQL} of every official query the lab must answer."""
    queries = {f"vLLM or dcgm-exporter / {question}": raw for question, raw, _ in official_queries(3 * 3600)}
    for panel, expr in SGLANG_DASHBOARD.items():
        queries[f"SGLang / {panel}"] = (expr.replace("$__rate_interval", RATE_INTERVAL)
                                        .replace("$model_name", SGLANG_MODEL))
    return queries


def _has_data(prometheus: str, expr: str) -> bool:
    answer = http.get_json(http.url(prometheus, "/api/v1/query", {"query": expr}))
    return bool(answer["data"]["result"])


def test_official_dashboards_queries_return_data(lab_prometheus_url: str, figure) -> None:
    queries = _official()
    deadline = time.monotonic() + 120   # rates need two scrapes inside their window after the lab starts
    while empty := [name for name, expr in queries.items() if not _has_data(lab_prometheus_url, expr)]:
        if time.monotonic() > deadline:
            break
        time.sleep(10)
    figure(f"{len(queries)} official dashboard queries (vLLM Overview/Performance, dcgm-exporter 12239, "
           f"SGLang), {len(queries) - len(empty)} with data")
    assert not empty, "official dashboard queries without data in the lab:\n" + "\n".join(
        f"{name}: {queries[name]}" for name in empty)
