"""The vLLM releases the simulator imitates: what each serves, as recorded from vLLM's own metrics code
(tests/sim/data/vllm-<version>.prom, tests/sim/data/record_vllm.py)."""

from __future__ import annotations

from dataclasses import dataclass

from llmobs.catalog import Catalog, Metric


@dataclass(frozen=True)
class Release:
    """What one vLLM release serves, measured on the recordings in tests/sim/data/vllm-<version>.prom."""

    version: str
    finish_reasons: tuple[str, ...]
    old_names: bool                    # serves the catalog's deprecated names beside their replacements
    lacks: frozenset[str] = frozenset()  # catalog metrics that came after it
    cache_config_labels: tuple[str, ...] | None = None  # None: the catalog's (the current release's)

    @property
    def admission_limits(self) -> bool:
        return "vllm:admission_rejections_total" not in self.lacks

    def served(self, catalog: Catalog) -> list[Metric]:
        """The catalog's inference metrics this release serves (optional ones need flags the sim has not)."""
        return [m for m in catalog.layer_metrics("inference") if not m.optional and m.name not in self.lacks
                and (m.deprecated is None or self.old_names)]


CURRENT_RELEASE = "0.33.0"
RELEASES = {release.version: release for release in (
    Release(CURRENT_RELEASE, ("stop", "length", "abort", "error", "repetition"), old_names=False),
    Release("0.10.2", ("stop", "length", "abort"), old_names=True, lacks=frozenset({
        "vllm:num_requests_waiting_by_reason", "vllm:engine_sleep_state", "vllm:prompt_tokens_by_source_total",
        "vllm:prompt_tokens_cached_total", "vllm:prompt_tokens_cached_by_source_total",
        "vllm:external_prefix_cache_queries_total", "vllm:external_prefix_cache_hits_total",
        "vllm:mm_cache_queries_total", "vllm:mm_cache_hits_total", "vllm:admission_rejections_total",
        "vllm:request_time_per_output_token_seconds", "vllm:request_num_preemptions",
        "vllm:request_prefill_kv_computed_tokens", "vllm:estimated_flops_per_gpu_total",
        "vllm:estimated_read_bytes_per_gpu_total", "vllm:estimated_write_bytes_per_gpu_total"}),
        cache_config_labels=(
            "block_size", "cache_dtype", "calculate_kv_scales", "cpu_kvcache_space_bytes", "cpu_offload_gb",
            "enable_prefix_caching", "engine", "gpu_memory_utilization", "is_attention_free", "kv_cache_memory_bytes",
            "kv_sharing_fast_prefill", "mamba_cache_dtype", "mamba_page_size_padded", "mamba_ssm_cache_dtype",
            "num_cpu_blocks", "num_gpu_blocks", "num_gpu_blocks_override", "prefix_caching_hash_algo",
            "sliding_window", "swap_space", "swap_space_bytes")),
)}
# CacheConfig defaults of a GPU server (vllm:cache_config_info label values); other fields read "None".
# vLLM's defaults the simulator runs with (--block-size, --gpu-memory-utilization).
BLOCK_SIZE = 16
GPU_MEMORY_UTILIZATION = 0.9

CACHE_CONFIG_DEFAULTS = {
    "cache_dtype": "auto", "is_attention_free": "False", "enable_prefix_caching": "True",
    "prefix_caching_hash_algo": "sha256", "prefix_cache_retention_interval": "0", "kv_cache_dtype_skip_layers": "[]",
    "mamba_cache_dtype": "auto", "mamba_ssm_cache_dtype": "auto", "mamba_cache_mode": "none",
    "enable_mamba_shared_prefix_checkpoint": "False", "replayssm_buffer_len": "16", "use_replayssm": "False",
    "use_kda_recoverssm": "False", "kv_sharing_fast_prefill": "False", "swa_bounded_replay": "True",
    "kv_offloading_backend": "native", "_block_size_resolved": "True", "user_specified_block_size": "False",
    "calculate_kv_scales": "False", "cpu_offload_gb": "0.0", "swap_space": "4.0", "swap_space_bytes": "4294967296.0",
}


def request_token_buckets(max_model_len: int) -> tuple[int, ...]:
    """vLLM's request-token buckets: the 1-2-5 series up to max_model_len (buckets.py, build_1_2_5_buckets)."""
    bounds, exponent = [], 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10 ** exponent
            if value > max_model_len:
                return tuple(bounds)
            bounds.append(value)
        exponent += 1
