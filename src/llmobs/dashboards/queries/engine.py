"""Inference engines, per model and instance: the engine-agnostic layer (any engine: vLLM, SGLang,
TensorRT-LLM, llama.cpp) and the raw vLLM histograms and counters the layer does not cover."""

from __future__ import annotations

from llmobs import conventions
from llmobs.catalog import LatencyHistogram
from llmobs.dashboards.queries import RATE
from llmobs.promql import Promql, aggregate, eq, matches, not_matches, selector, variable

BY_ENGINE = ("model_name", "instance")

# The engine-agnostic layer (recording_rules.yaml engine_signals, groups llmobs.engine and llmobs.engine.aggregate).
REQUESTS = "instance_model:engine_requests:rate5m"
REQUESTS_BY_REASON = "instance_model_reason:engine_requests:rate5m"
ERRORS = "instance_model:engine_request_errors:rate5m"
ERROR_RATIO = "instance_model:engine_request_errors:ratio_rate5m"
RUNNING = "instance_model:engine_requests_running:sum"
# Waiting for capacity (vLLM 0.33 leaves out requests deferred for a LoRA budget or a KV transfer).
WAITING = "instance_model:engine_requests_waiting:sum"
KV_CACHE_USAGE = "instance_model:engine_kv_cache_usage:max"
PREEMPTIONS = "instance_model:engine_preemptions:rate5m"
PROMPT_TOKENS = "instance_model:engine_prompt_tokens:rate5m"
GENERATION_TOKENS = "instance_model:engine_generation_tokens:rate5m"
# vLLM only (group llmobs.vllm.instance): the other engines have no prefix-cache query count.
PREFIX_CACHE_HITS = "instance_model:vllm_prefix_cache_hits:ratio_rate5m"

# Speculative decoding counters (vLLM with a speculative_config).
SPEC_DRAFTS = "vllm:spec_decode_num_drafts_total"
SPEC_DRAFT_TOKENS = "vllm:spec_decode_num_draft_tokens_total"
SPEC_ACCEPTED_TOKENS = "vllm:spec_decode_num_accepted_tokens_total"
SPEC_DECODE = (SPEC_DRAFTS, SPEC_DRAFT_TOKENS, SPEC_ACCEPTED_TOKENS)


def up(scope: Promql, job: str) -> str:
    """1 per engine Prometheus could scrape (`job`: one engine job, or a regex of them), 0 per one it could not."""
    return scope.sel("up", matches("job", job) if "|" in job else eq("job", job), variable("instance"))


def total(scope: Promql, series: str) -> str:
    """One number: a per-engine rule summed over the selected engines."""
    return aggregate("sum", scope.sel(series))


def error_ratio(scope: Promql) -> str:
    """Share of the selected engines' finished requests that failed (none failed: 0, not no data)."""
    errors = aggregate("sum", scope.sel(REQUESTS_BY_REASON, eq("finished_reason", "error")))
    return Promql.ratio(f"({errors} or vector(0))", total(scope, REQUESTS))


def by_reason(scope: Promql) -> str:
    return aggregate("sum", scope.sel(REQUESTS_BY_REASON), ("finished_reason",))


def http_responses(scope: Promql) -> str:
    """Responses per second by status class (the API server's metric has no model_name)."""
    return scope.sum_rate("http_requests_total", RATE, ("status",), variable("instance"))


def cache_config(scope: Promql) -> str:
    return scope.sel("vllm:cache_config_info", variable("instance"))


# ------------------------------------------------------------------ latency rules
def latency_percentile(scope: Promql, histogram: LatencyHistogram, quantile: str) -> str:
    """A percentile of a latency histogram per instance and model, recorded over 5 minutes."""
    return scope.sel(conventions.latency_quantile(histogram.name, "instance_model"), eq("quantile", quantile))


# A label no series carries, matched against `${host}${instance}`: that regex is `.*.*` (it matches the label's
# empty value) only when both variables are at "All" (allValue `.*`), any chosen value makes it match nothing.
ALL_ENGINES = "llmobs_all_engines"
_HOST_AND_INSTANCE = "${host}${instance}"


def latency_buckets(scope: Promql, histogram: LatencyHistogram) -> str:
    """Recorded bucket rates of a latency histogram, summed over the selected instances: at host and instance
    "All", the per-model rates (a series per model and bucket, whatever the fleet's size), else the per-engine
    ones. Each side selects nothing in the other case, so Prometheus reads only one of them."""
    per_model = selector(conventions.latency_buckets(histogram.name, "model"), variable("model_name"),
                         matches(ALL_ENGINES, _HOST_AND_INSTANCE))
    per_engine = scope.sel(conventions.latency_buckets(histogram.name, "instance_model"),
                           not_matches(ALL_ENGINES, _HOST_AND_INSTANCE))
    return f"{aggregate('sum', per_model, ('le',))} or {aggregate('sum', per_engine, ('le',))}"


# ------------------------------------------------------------------ raw histogram sums and counts
def mean(scope: Promql, histogram: str) -> str:
    """The mean observation of a histogram per engine (none observed: no result)."""
    return Promql.ratio(scope.sum_rate(f"{histogram}_sum", RATE, BY_ENGINE),
                        scope.sum_rate(f"{histogram}_count", RATE, BY_ENGINE))


# ------------------------------------------------------------------ speculative decoding
def spec_rate(scope: Promql, counter: str) -> str:
    """Per second, per engine: one of the SPEC_DECODE counters."""
    return scope.sum_rate(counter, RATE, BY_ENGINE)


def draft_acceptance(scope: Promql) -> str:
    """Share of the proposed draft tokens the target model accepted."""
    return Promql.ratio(spec_rate(scope, SPEC_ACCEPTED_TOKENS), spec_rate(scope, SPEC_DRAFT_TOKENS))


def acceptance_length(scope: Promql) -> str:
    """Tokens produced per draft step: 1 + accepted tokens per draft."""
    return "1 + " + Promql.ratio(spec_rate(scope, SPEC_ACCEPTED_TOKENS), spec_rate(scope, SPEC_DRAFTS))
