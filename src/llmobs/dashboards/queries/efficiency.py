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

# Cost and idle GPUs (recording_rules.yaml, group llmobs.cost), from the settings' prices.
FLEET_COST_PER_HOUR = "fleet:llmobs_cost:usd_per_hour"
FLEET_COST_PER_MILLION_TOKENS = "fleet:llmobs_cost:usd_per_million_tokens"
HOST_COST_PER_HOUR = "host:llmobs_cost:usd_per_hour"
HOST_COST_PER_MILLION_TOKENS = "host:llmobs_cost:usd_per_million_tokens"
MODEL_COST_PER_HOUR = "model:llmobs_cost:usd_per_hour"
MODEL_COST_PER_MILLION_TOKENS = "model:llmobs_cost:usd_per_million_tokens"
FLEET_TOKENS_PER_KWH = "fleet:vllm_generation_tokens_per_kwh:ratio_rate5m"
MODEL_TOKENS_PER_KWH = "model:vllm_generation_tokens_per_kwh:ratio_rate5m"
FLEET_IDLE_GPUS = "fleet:llmobs_idle_gpus:count"
FLEET_IDLE_GPU_HOURS = "fleet:llmobs_idle_gpu_hours:sum1d"
FLEET_IDLE_GPU_COST = "fleet:llmobs_idle_gpu_cost:usd_per_hour"
MODEL_IDLE_GPU_HOURS = "model:llmobs_idle_gpu_hours:sum1d"


def energy_per_million_tokens() -> str:
    """kWh per million generated tokens: 1e6 / (tokens/J) J, / 3.6e6 J per kWh."""
    return f"1 / {FLEET_TOKENS_PER_JOULE} / 3.6"


def running_per_gpu() -> str:
    return f"{fleet.FLEET_RUNNING} / {gpu.FLEET_GPUS}"


def headroom(scope: Promql, usage: str) -> str:
    """1 - a usage ratio: what is still free."""
    return f"1 - {scope.sel(usage)}"


# Applications, from their OpenTelemetry GenAI metrics (recording_rules.yaml, group llmobs.genai).
APP_MODEL_TOKENS = "service_model:gen_ai_client_token_usage:rate5m"
APP_MODEL_CALL_ERRORS = "service_model:gen_ai_client_operation_errors:ratio_rate5m"
APP_MODEL_CALL_DURATION = "service_model:gen_ai_client_operation_duration_seconds:histogram_quantile5m"
APP_MODEL_COST_PER_HOUR = "service_model:gen_ai_client_cost:usd_per_hour"
APP_COST_PER_HOUR = "service:gen_ai_client_cost:usd_per_hour"


def app_call_duration(quantile: str) -> str:
    return f'{APP_MODEL_CALL_DURATION}{{quantile="{quantile}"}}'
