"""Serving across the fleet and per model: the fleet- and model-level recording rules (cheap on a large
fleet), the busiest instance of each model, and the alerts that fire."""

from __future__ import annotations

from llmobs import conventions
from llmobs.catalog import LatencyHistogram
from llmobs.dashboards.queries import engine
from llmobs.promql import Promql, aggregate, eq, none_of, selector

# The engine-agnostic layer's aggregates (recording_rules.yaml, group llmobs.engine.aggregate).
FLEET_REQUESTS = "fleet:engine_requests:rate5m"
FLEET_PROMPT_TOKENS = "fleet:engine_prompt_tokens:rate5m"
FLEET_GENERATION_TOKENS = "fleet:engine_generation_tokens:rate5m"
FLEET_RUNNING = "fleet:engine_requests_running:sum"
FLEET_WAITING = "fleet:engine_requests_waiting:sum"
MODEL_REQUESTS = "model:engine_requests:rate5m"
MODEL_REQUESTS_BY_REASON = "model_reason:engine_requests:rate5m"
MODEL_ERROR_RATIO = "model:engine_request_errors:ratio_rate5m"
MODEL_PROMPT_TOKENS = "model:engine_prompt_tokens:rate5m"
MODEL_GENERATION_TOKENS = "model:engine_generation_tokens:rate5m"
MODEL_RUNNING = "model:engine_requests_running:sum"
MODEL_WAITING = "model:engine_requests_waiting:sum"
MODEL_KV_CACHE_USAGE = "model:engine_kv_cache_usage:max"
# vLLM only (group llmobs.vllm.aggregate): the finish reasons that tell an abort from an error.
MODEL_SUCCESS_RATIO = "model:vllm_request_success:ratio_rate5m"

# Finish reasons that are not a normal ending: the engine failed, or the client went away.
FAILED, ABORTED = "error", "abort"
FIRING_ALERTS = selector("ALERTS", eq("alertstate", "firing"))


def error_ratio() -> str:
    """Share of the fleet's finished requests that failed inside the engine (none failed: 0), over the
    engines that count failures."""
    errors = aggregate("sum", engine.ERRORS)
    counted = aggregate("sum", f"{engine.REQUESTS} and {engine.ERRORS}")
    return Promql.ratio(f"({errors} or vector(0))", counted)


def completed_ratio() -> str:
    """Share of the fleet's finished requests that ended normally (stop, length, repetition)."""
    normal = aggregate("sum", selector(MODEL_REQUESTS_BY_REASON, none_of("finished_reason", (FAILED, ABORTED))))
    return Promql.ratio(normal, aggregate("sum", MODEL_REQUESTS_BY_REASON))


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
