"""The llmobs.genai recording rules: tokens per second, call rate, error ratio, duration percentiles and cost per
application (service_name) and model, from the OpenTelemetry GenAI metrics as Prometheus' OTLP receiver names
them. Checked with the real promtool (both releases) against values computed by hand."""

from __future__ import annotations

from pathlib import Path

from rules_support import promtool_recording_test, within

from llmobs import catalog as catalog_mod

H100 = "NVIDIA H100 80GB HBM3"  # DCGM's modelName of gpus.yaml's H100-SXM
# One H100 at 3.60 per hour serves llama, which generates 1000 tokens/s: 3.6 / 3600 * 1e6 / 1000 = 1.00 per
# million generated tokens.
SETTINGS = {"cost": {"gpus": {"H100-SXM": {"hour_usd": 3.6}}},
            "vllm_endpoints": {"gpu-a": [{"model": "llama", "port": 8000, "gpus": [0]}]}}
# Output and input tokens per minute per application: chat receives 500 tokens/s of llama, rag 100.
TOKENS = {("chat", "output"): 30000, ("chat", "input"): 120000, ("rag", "output"): 6000}
# chat's calls per minute by duration: 30 of 0.5 s, 24 of 1 s, 6 of 2 s, and 6 that fail after 8 s.
CALLS = {0.5: 30, 1.0: 24, 2.0: 6}
FAILED = {8.0: 6}

# By hand: 66 calls a minute = 1.1/s, 6/66 failed. Cumulative per second: le 0.32: 0, 0.64: 0.5, 1.28: 0.9,
# 2.56 and 5.12: 1.0, 10.24 and up: 1.1. P50 (rank 0.55) = 0.64 + 0.64 * 0.05 / 0.4 = 0.72; P95 (rank 1.045)
# = 5.12 + 5.12 * 0.045 / 0.1 = 7.424; P99 (rank 1.089) = 5.12 + 5.12 * 0.089 / 0.1 = 9.6768.
# Cost: chat 500 tokens/s * 3600 / 1e6 * 1.00 = 1.80 per hour, rag 100 tokens/s: 0.36.
CHAT = {"service_name": "chat", "gen_ai_request_model": "llama", "model_name": "llama"}
EXPECTED = [
    ("service_model:gen_ai_client_token_usage:rate5m", {**CHAT, "gen_ai_token_type": "output"}, 500),
    ("service_model:gen_ai_client_token_usage:rate5m", {**CHAT, "gen_ai_token_type": "input"}, 2000),
    ("service:gen_ai_client_token_usage:rate5m", {"service_name": "chat", "gen_ai_token_type": "output"}, 500),
    ("service_model:gen_ai_client_operations:rate5m", CHAT, 1.1),
    ("service_model:gen_ai_client_operation_errors:ratio_rate5m", CHAT, 6 / 66),
    ("service_model:gen_ai_client_operation_duration_seconds:histogram_quantile5m", {**CHAT, "quantile": "0.5"}, 0.72),
    ("service_model:gen_ai_client_operation_duration_seconds:histogram_quantile5m", {**CHAT, "quantile": "0.95"},
     7.424),
    ("service_model:gen_ai_client_operation_duration_seconds:histogram_quantile5m", {**CHAT, "quantile": "0.99"},
     9.6768),
    ("model:llmobs_cost:usd_per_million_tokens", {"model_name": "llama"}, 1.0),
    ("service_model:gen_ai_client_cost:usd_per_hour", CHAT, 1.8),
    ("service:gen_ai_client_cost:usd_per_hour", {"service_name": "chat"}, 1.8),
    ("service:gen_ai_client_cost:usd_per_hour", {"service_name": "rag"}, 0.36),
]
# What the OTLP receiver adds to every series of an application (job from service.name, instance from
# service.instance.id) and the call's own attributes.
RESOURCE = 'job="{service}", instance="{service}-1", service_name="{service}"'
CALL = 'gen_ai_operation_name="chat", gen_ai_provider_name="openai", gen_ai_request_model="llama"'


def _duration_series(per_minute: dict[float, int], extra: str) -> list[dict[str, str]]:
    """The cumulative _bucket, _count and _sum counters of calls of the given durations, per minute."""
    boundaries = catalog_mod.load().bucket_families["gen_ai_operation_duration"]
    labels = f'{RESOURCE.format(service="chat")}, {CALL}{extra}'
    name = "gen_ai_client_operation_duration_seconds"
    cumulative = [(str(le), sum(n for d, n in per_minute.items() if d <= le)) for le in boundaries]
    series = [{"series": f'{name}_bucket{{{labels}, le="{le}"}}', "values": f"0+{count}x15"}
              for le, count in (*cumulative, ("+Inf", sum(per_minute.values())))]
    return [*series, {"series": f"{name}_count{{{labels}}}", "values": f"0+{sum(per_minute.values())}x15"},
            {"series": f"{name}_sum{{{labels}}}", "values": f"0+{sum(d * n for d, n in per_minute.items())}x15"}]


def _inputs() -> list[dict[str, str]]:
    gpu = f'host="gpu-a", gpu="0", UUID="GPU-a-0", modelName="{H100}"'
    series = [{"series": f"DCGM_FI_DEV_GPU_TEMP{{{gpu}}}", "values": "50x15"},
              {"series": 'vllm:generation_tokens_total{host="gpu-a", instance="gpu-a:8000", model_name="llama"}',
               "values": "0+60000x15"}]
    series += [{"series": f'gen_ai_client_token_usage_sum{{{RESOURCE.format(service=service)}, {CALL},'
                          f' gen_ai_token_type="{kind}"}}', "values": f"0+{per_minute}x15"}
               for (service, kind), per_minute in TOKENS.items()]
    return series + _duration_series(CALLS, "") + _duration_series(FAILED, ', error_type="timeout"')


def test_genai_rules_give_tokens_latency_and_cost_per_application_and_model(promtool: str, tmp_path: Path) -> None:
    checks = [within(*expected) for expected in EXPECTED]
    result = promtool_recording_test(promtool, tmp_path, "genai.test.yml", SETTINGS, _inputs(), checks)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_model_the_fleet_does_not_serve_has_no_cost(promtool: str, tmp_path: Path) -> None:
    """An application calling a provider's model (not in vllm_endpoints): its tokens are recorded, no cost."""
    api_call = CALL.replace('"llama"', '"gpt-4o"')
    inputs = [*_inputs()[:2], {"series": f'gen_ai_client_token_usage_sum{{{RESOURCE.format(service="chat")}, '
                                         f'{api_call}, gen_ai_token_type="output"}}', "values": "0+30000x15"}]
    checks = [within("service_model:gen_ai_client_token_usage:rate5m", {
                  "service_name": "chat", "gen_ai_request_model": "gpt-4o", "model_name": "gpt-4o",
                  "gen_ai_token_type": "output"}, 500),
              {"expr": "service_model:gen_ai_client_cost:usd_per_hour", "eval_time": "10m", "exp_samples": []}]
    result = promtool_recording_test(promtool, tmp_path, "api.test.yml", SETTINGS, inputs, checks)
    assert result.returncode == 0, result.stdout + result.stderr
