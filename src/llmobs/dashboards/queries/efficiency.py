"""Useful work per GPU and per joule, and its cost: the efficiency recording rules and the GPU price."""

from __future__ import annotations

from llmobs.dashboards.queries import fleet, gpu
from llmobs.promql import Promql

# Recording rules (recording_rules.yaml, group llmobs.efficiency).
FLEET_TOKENS_PER_GPU = "fleet:vllm_generation_tokens_per_gpu:rate5m"
FLEET_TOKENS_PER_JOULE = "fleet:vllm_generation_tokens_per_joule:ratio_rate5m"
HOST_GENERATION_TOKENS = "host:vllm_generation_tokens:rate5m"
HOST_TOKENS_PER_GPU = "host:vllm_generation_tokens_per_gpu:rate5m"
HOST_TOKENS_PER_JOULE = "host:vllm_generation_tokens_per_joule:ratio_rate5m"
ENGINE_TOKENS_PER_GPU = "instance_model:vllm_generation_tokens_per_gpu:rate5m"
ENGINE_TOKENS_PER_JOULE = "instance_model:vllm_generation_tokens_per_joule:ratio_rate5m"

# The constant variable holding setting cost.gpu_hour_usd.
PRICE_VARIABLE = "gpu_hour_usd"
_PRICE_PER_MILLION_GPU_SECONDS = f"${PRICE_VARIABLE} * 1e6 / 3600"


def energy_per_million_tokens() -> str:
    """kWh per million generated tokens: 1e6 / (tokens/J) J, / 3.6e6 J per kWh."""
    return f"1 / {FLEET_TOKENS_PER_JOULE} / 3.6"


def running_per_gpu() -> str:
    return f"{fleet.FLEET_RUNNING} / {gpu.FLEET_GPUS}"


def cost_per_million_tokens() -> str:
    """Cost of the reporting GPUs' time per million generated tokens, busy or not."""
    return Promql.ratio(f"{_PRICE_PER_MILLION_GPU_SECONDS} * {gpu.FLEET_GPUS}", fleet.FLEET_GENERATION_TOKENS)


def spend_per_hour() -> str:
    return f"${PRICE_VARIABLE} * {gpu.FLEET_GPUS}"


def cost_per_million_tokens_by_host(scope: Promql, host: str) -> str:
    return (f"{_PRICE_PER_MILLION_GPU_SECONDS} * {scope.sel(gpu.HOST_GPUS)}"
            f" / on ({host}) ({scope.sel(HOST_GENERATION_TOKENS)} > 0)")


def headroom(scope: Promql, usage: str) -> str:
    """1 - a usage ratio: what is still free."""
    return f"1 - {scope.sel(usage)}"
