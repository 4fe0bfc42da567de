"""The /metrics page of a simulated vLLM engine (llmobs.sim.vllm.Engine): the families of the release it
imitates, with vLLM's names, HELP, labels, bucket boundaries and `_created` series."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from llmobs import catalog as catalog_mod
from llmobs.sim.vllm_releases import BLOCK_SIZE, CACHE_CONFIG_DEFAULTS, GPU_MEMORY_UTILIZATION

if TYPE_CHECKING:
    from llmobs.sim.vllm import Engine

HIST_OF = {
    "vllm:time_to_first_token_seconds": "ttft", "vllm:inter_token_latency_seconds": "itl",
    "vllm:time_per_output_token_seconds": "itl", "vllm:request_time_per_output_token_seconds": "tpot",
    "vllm:e2e_request_latency_seconds": "e2e", "vllm:request_queue_time_seconds": "queue",
    "vllm:request_inference_time_seconds": "inference", "vllm:request_prefill_time_seconds": "prefill",
    "vllm:request_decode_time_seconds": "decode", "vllm:request_prompt_tokens": "prompt",
    "vllm:request_generation_tokens": "generation", "vllm:request_max_num_generation_tokens": "max_generation",
    "vllm:request_params_max_tokens": "max_tokens", "vllm:request_params_n": "n",
    "vllm:iteration_tokens_total": "iteration", "vllm:request_num_preemptions": "preemptions",
    "vllm:request_prefill_kv_computed_tokens": "prefill_kv",
}


class EngineCollector(Collector):
    """The engine's /metrics families. Counters and histograms carry `_created` (the server's start), as
    prometheus_client gives every child of vLLM's metrics."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def _snapshot(self) -> dict:
        engine = self.engine
        with engine._lock:
            usage, waiting = engine.kv_usage(), len(engine.waiting)
            hits = engine.counters["prefix_cache_hits"]
            values = {
                "vllm:num_requests_running": len(engine.running), "vllm:num_requests_waiting": waiting,
                "vllm:kv_cache_usage_perc": usage, "vllm:gpu_cache_usage_perc": usage,
                "vllm:gpu_prefix_cache_queries_total": engine.counters["prefix_cache_queries"],
                "vllm:gpu_prefix_cache_hits_total": hits, "vllm:prompt_tokens_cached_total": hits,
                ("vllm:num_requests_waiting_by_reason", "capacity"): waiting,
                ("vllm:engine_sleep_state", "awake"): 1.0,
                ("vllm:prompt_tokens_by_source_total", "local_compute"): engine.counters["prompt_tokens"] - hits,
                ("vllm:prompt_tokens_by_source_total", "local_cache_hit"): hits,
                ("vllm:prompt_tokens_cached_by_source_total", "device"): hits,
                **{f"vllm:{name}_total": value for name, value in engine.counters.items()},
                **{("vllm:admission_rejections_total", r): n for r, n in engine.admission_rejections.items()},
                **{("vllm:request_success_total", r): n for r, n in engine.finished.items()},
            }
            return {"values": values, "http": dict(engine.http),
                    "hists": {name: (h.buckets(), h.total) for name, h in engine.hist.items()}}

    def collect(self) -> Iterator:
        engine, cat = self.engine, self.engine.catalog
        snap = self._snapshot()
        created = engine.started
        engine_labels = [engine.config.model, engine.engine_index]
        for metric in engine.release.served(cat):
            name, kind = metric.name, metric.type
            labelnames = list(cat.labels_of(metric))
            if name == "vllm:cache_config_info":
                yield self._cache_config(metric)
                continue
            if kind == "histogram":
                buckets, total = snap["hists"][HIST_OF[name]]
                family = HistogramMetricFamily(name, metric.help, labels=labelnames)
                family.add_metric(engine_labels, buckets, total)
                labels = dict(zip(labelnames, engine_labels, strict=True))
                family.samples.append(Sample(f"{name}_created", labels, created))
                yield family
                continue
            if kind == "counter":
                family = CounterMetricFamily(name.removesuffix("_total"), metric.help, labels=labelnames)
            else:
                family = GaugeMetricFamily(name, metric.help, labels=labelnames)
            for label_values, value in self._children(metric, snap):
                if kind == "counter":
                    family.add_metric(label_values, value, created=created)
                else:
                    family.add_metric(label_values, value)
            yield family

    def _children(self, metric: catalog_mod.Metric, snap: dict) -> list[tuple[list[str], float]]:
        """(label values, value) of each series of a counter or gauge family."""
        engine, values, name = self.engine, snap["values"], metric.name
        if name == "http_requests_total":
            return [([handler, method, status], count) for (handler, method, status), count in sorted(
                snap["http"].items())]
        if name == "vllm:admission_rejections_total":   # no engine label
            return [([engine.config.model, reason], values[(name, reason)])
                    for reason in metric.label_values["reason"]]
        base = [engine.config.model, engine.engine_index]
        if metric.extra_labels:
            (label,) = metric.extra_labels
            kinds = engine.release.finish_reasons if label == "finished_reason" else metric.label_values[label]
            return [([*base, kind], values.get((name, kind), 0.0)) for kind in kinds]
        return [(base, values.get(name, 0.0))]

    def _cache_config(self, metric: catalog_mod.Metric) -> GaugeMetricFamily:
        """vllm:cache_config_info: every CacheConfig field of the release as a label, value 1."""
        engine = self.engine
        labels = engine.release.cache_config_labels or self.engine.catalog.labels_of(metric)
        tokens = engine.num_gpu_blocks * BLOCK_SIZE
        actual = {"engine": engine.engine_index, "block_size": str(BLOCK_SIZE),
                  "gpu_memory_utilization": str(GPU_MEMORY_UTILIZATION), "num_gpu_blocks": str(engine.num_gpu_blocks),
                  "kv_cache_size_tokens": str(tokens),
                  "kv_cache_max_concurrency": str(round(tokens / engine.config.max_model_len, 2))}
        family = GaugeMetricFamily(metric.name, metric.help, labels=list(labels))
        family.add_metric([actual.get(label) or CACHE_CONFIG_DEFAULTS.get(label, "None") for label in labels], 1.0)
        return family
