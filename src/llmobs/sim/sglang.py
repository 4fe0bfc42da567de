"""SGLang 0.5.23 (`sglang serve --enable-metrics`) on vLLM's request model: its /metrics page.

Families, HELP, labels and buckets are the catalog's (src/llmobs/catalog/metrics-sglang.yaml, checked
against a recording of SGLang's own collectors by tests/sim/test_engine_upstream.py); this module says
which value of the engine model feeds each. Families of features the lab's servers do not use (data-
parallel attention, speculative decoding, Mamba and sliding-window pools, routing keys, disaggregated
queues) are served as an idle server serves them: zero.
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING

from llmobs.sim.engine_page import Flavour, Labels, Page
from llmobs.sim.vllm_releases import BLOCK_SIZE

if TYPE_CHECKING:
    from llmobs.sim.vllm import Engine

VERSION = "0.5.23"
# SGLang's own bucket families for the model's histograms (the rest keep vLLM's).
BUCKETS = {"ttft": "sglang_time_to_first_token", "itl": "sglang_inter_token_latency",
           "tpot": "sglang_inter_token_latency", "e2e": "sglang_request_latency", "queue": "sglang_queue_time",
           "prefill": "sglang_stage_latency", "prompt": "sglang_request_tokens",
           "generation": "sglang_request_tokens", "prefill_kv": "sglang_request_tokens"}
# The routing-key gauges' buckets, written as (gt, le] label pairs (RoutingKeyMetrics in 0.5.23's
# metrics_collector.py; the recording has the same).
ROUTING_KEY_BOUNDS = ("0", "1", "2", "3", "5", "7", "10", "20", "50", "100", "200", "+Inf")
STATUS_CODES = {"2xx": "200", "4xx": "400", "5xx": "500"}
# The per-request families split by is_streaming: the simulated clients do not stream.
STREAMING = "false"


def server_labels(engine: Engine) -> Labels:
    """One GPU, no parallelism: every rank 0; the scheduler's pid on the gauges SGLang keeps per process."""
    return {"engine_type": "unified", "model_name": engine.config.model, "tp_rank": "0", "pp_rank": "0",
            "moe_ep_rank": "0", "dp_rank": "0", "cache_type": "UnifiedRadixCache", "pid": str(os.getpid())}


def _routing_keys(engine: Engine) -> list[Labels]:
    base = {k: v for k, v in server_labels(engine).items() if k in ("engine_type", "model_name", "tp_rank",
                                                                     "pp_rank", "moe_ep_rank")}
    return [{**base, "gt": gt, "le": le} for gt, le in itertools.pairwise(ROUTING_KEY_BOUNDS)]


def _paths(engine: Engine) -> list[Labels]:
    return sorted(({"endpoint": path, "method": method} for path, method in {(p, m) for p, m, _ in engine.http}),
                  key=lambda labels: (labels["endpoint"], labels["method"]))


def _responses(engine: Engine) -> list[Labels]:
    return [{"endpoint": path, "method": method, "status_code": STATUS_CODES.get(status, status)}
            for path, method, status in sorted(engine.http)]


def _streaming(value: float):
    return lambda labels: value if labels.get("is_streaming", STREAMING) == STREAMING else 0.0


def page(engine: Engine) -> Page:
    counters, hits = engine.counters, engine.counters["prefix_cache_hits"]
    capacity = engine.num_gpu_blocks * BLOCK_SIZE
    used = round(engine.kv_usage() * capacity)
    decoding = len(engine.running) / engine.base_itl if engine.running else 0.0
    finished = sum(engine.finished.values())
    by_mode = {"prefill_compute": counters["prompt_tokens"] - hits, "prefill_cache": hits,
               "decode": counters["generation_tokens"], "input": counters["prompt_tokens"] - hits, "device_hit": hits}
    http = {(path, method): n for (path, method, _), n in engine.http.items()}
    values = {
        "sglang:num_running_reqs": len(engine.running), "sglang:num_queue_reqs": len(engine.waiting),
        "sglang:num_used_tokens": used, "sglang:kv_used_tokens": used, "sglang:kv_available_tokens": capacity - used,
        "sglang:token_usage": engine.kv_usage(), "sglang:full_token_usage": engine.kv_usage(),
        "sglang:max_total_num_tokens": capacity, "sglang:num_pages": capacity, "sglang:page_size": 1,
        "sglang:context_len": engine.config.max_model_len, "sglang:gen_throughput": decoding,
        "sglang:cache_hit_rate": hits / counters["prefix_cache_queries"] if counters["prefix_cache_queries"] else 0.0,
        "sglang:decode_sum_seq_lens": sum(r.prompt + r.generated for r in engine.running),
        "sglang:is_cuda_graph": 1.0, "sglang:new_token_ratio": 0.7,
        "sglang:weight_memory_usage_gb": engine.config.params_b * 2,
        "sglang:kv_cache_memory_usage_gb": capacity * 0.04 * engine.config.params_b ** 0.55 / 1024,
        "sglang:prompt_tokens_total": _streaming(counters["prompt_tokens"]),
        "sglang:generation_tokens_total": _streaming(counters["generation_tokens"]),
        "sglang:num_requests_total": _streaming(finished),
        "sglang:num_aborted_requests_total": engine.finished.get("abort", 0),
        "sglang:cached_tokens_total": lambda labels: hits if labels["cache_source"] == "device" else 0.0,
        "sglang:realtime_tokens_total": lambda labels: by_mode.get(labels["mode"], 0.0),
        "sglang:prefill_effective_tokens_total": lambda labels: by_mode.get(labels["mode"], 0.0),
        "sglang:num_retracted_requests_total": counters["num_preemptions"],
        "sglang:http_requests_total": lambda labels: http.get((labels["endpoint"], labels["method"]), 0),
        "sglang:http_responses_total": lambda labels: engine.http.get(
            (labels["endpoint"], labels["method"], next(k for k, v in STATUS_CODES.items()
                                                        if v == labels["status_code"])), 0),
    }
    hist = engine.hist

    def streamed(signal: str):
        return lambda labels: hist[signal] if labels.get("is_streaming", STREAMING) == STREAMING else None

    histograms = {
        "sglang:time_to_first_token_seconds": streamed("ttft"),
        "sglang:inter_token_latency_seconds": streamed("itl"),
        "sglang:e2e_request_latency_seconds": streamed("e2e"),
        "sglang:request_time_per_output_token_seconds": streamed("tpot"),
        "sglang:queue_time_seconds": streamed("queue"),
        "sglang:prompt_tokens_histogram": streamed("prompt"),
        "sglang:generation_tokens_histogram": streamed("generation"),
        "sglang:uncached_prompt_tokens_histogram": streamed("prefill_kv"),
        "sglang:per_stage_req_latency_seconds": lambda labels: hist["prefill"] if labels["stage"] == "prefill_forward"
        else None,
    }
    return Page(values, histograms)


FLAVOUR = Flavour(engine="sglang", version=VERSION, owned_by="sglang", buckets=BUCKETS, server_labels=server_labels,
                  page=page, children={"sglang:routing_key_all_req_count": _routing_keys,
                                       "sglang:routing_key_running_req_count": _routing_keys,
                                       "sglang:http_requests_total": _paths, "sglang:http_requests_active": _paths,
                                       "sglang:http_responses_total": _responses})
