"""Serving across the fleet and per model: the fleet- and model-level recording rules (cheap on a large
fleet), the busiest instance of each model, and the alerts that fire."""

from __future__ import annotations

from llmobs import conventions
from llmobs.catalog import LatencyHistogram
from llmobs.dashboards.queries import engine
from llmobs.promql import Promql, aggregate, eq, none_of, selector

# Recording rules (recording_rules.yaml, group llmobs.vllm.aggregate).
FLEET_REQUESTS = "fleet:vllm_requests:rate5m"
FLEET_PROMPT_TOKENS = "fleet:vllm_prompt_tokens:rate5m"
FLEET_GENERATION_TOKENS = "fleet:vllm_generation_tokens:rate5m"
FLEET_RUNNING = "fleet:vllm_requests_running:sum"
FLEET_WAITING = "fleet:vllm_requests_waiting:sum"
MODEL_REQUESTS = "model:vllm_requests:rate5m"
MODEL_REQUESTS_BY_REASON = "model_reason:vllm_requests:rate5m"
MODEL_ERROR_RATIO = "model:vllm_request_errors:ratio_rate5m"
MODEL_SUCCESS_RATIO = "model:vllm_request_success:ratio_rate5m"
MODEL_PROMPT_TOKENS = "model:vllm_prompt_tokens:rate5m"
MODEL_GENERATION_TOKENS = "model:vllm_generation_tokens:rate5m"
MODEL_RUNNING = "model:vllm_requests_running:sum"
MODEL_WAITING = "model:vllm_requests_waiting:sum"
MODEL_KV_CACHE_USAGE = "model:vllm_kv_cache_usage:max"

# Finish reasons that are not a normal ending: the engine failed, or the client went away.
FAILED, ABORTED = "error", "abort"
FIRING_ALERTS = selector("ALERTS", eq("alertstate", "firing"))


def error_ratio() -> str:
    """Share of the fleet's finished requests that failed inside the engine (none failed: 0)."""
    errors = aggregate("sum", selector(MODEL_REQUESTS_BY_REASON, eq("finished_reason", FAILED)))
    return Promql.ratio(f"({errors} or vector(0))", FLEET_REQUESTS)


def completed_ratio() -> str:
    """Share of the fleet's finished requests that ended normally (stop, length, repetition)."""
    normal = aggregate("sum", selector(MODEL_REQUESTS_BY_REASON, none_of("finished_reason", (FAILED, ABORTED))))
    return Promql.ratio(normal, FLEET_REQUESTS)


def by_reason(scope: Promql) -> str:
    return aggregate("sum", scope.sel(MODEL_REQUESTS_BY_REASON), ("finished_reason",))


def latency_percentile(scope: Promql, histogram: LatencyHistogram, quantile: str) -> str:
    """A percentile of a latency histogram per model, recorded over 5 minutes."""
    return scope.sel(conventions.latency_quantile(histogram.name, "model"), eq("quantile", quantile))


def busiest_instance(scope: Promql, series: str) -> str:
    """The largest value of a per-instance rule among each model's instances."""
    return aggregate("max", scope.sel(series), ("model_name",))


def deepest_queue(scope: Promql) -> str:
    return busiest_instance(scope, engine.WAITING)


def preemptions(scope: Promql) -> str:
    return busiest_instance(scope, engine.PREEMPTIONS)


def firing_by_severity() -> str:
    return aggregate("count", FIRING_ALERTS, ("severity",))
