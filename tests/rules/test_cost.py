"""On-prem cost: the `cost` settings (GPU prices per model, amortised purchases, electricity, site and host
overrides) become prices.yml, and the llmobs.cost recording rules give cost per hour and per million
tokens, tokens per kWh and idle GPUs. Checked with the real promtool against values computed by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from rules_support import promtool_recording_test, within

from llmobs.errors import ConfigError
from llmobs.rules import render_rule_files
from llmobs.settings import load_settings

H100 = "NVIDIA H100 80GB HBM3"  # DCGM's modelName of gpus.yaml's H100-SXM
SETTINGS = {
    "cost": {
        "electricity_kwh_usd": 0.20,
        # 35040 / (4 years * 8760 h) = 1.00 per GPU-hour.
        "gpus": {"H100-SXM": {"purchase_usd": 35040, "amortisation_years": 4}},
        "sites": {"west": {"hosts": ["gpu-b"], "electricity_kwh_usd": 0.10}},
        "hosts": {"gpu-b": {"gpus": {"H100-SXM": {"hour_usd": 3.0}}}},
    },
    "vllm_endpoints": {
        "gpu-a": [{"model": "llama", "port": 8000, "gpus": [0, 1]}],
        "gpu-b": [{"model": "llama", "port": 8000, "gpus": [0]}, {"model": "qwen", "port": 8001, "gpus": [1]}],
    },
}
GPUS = [("gpu-a", 0), ("gpu-a", 1), ("gpu-b", 0), ("gpu-b", 1)]
# Every GPU draws 500 W: 500 J/s = 500000 mJ/s, +30e6 mJ per minute of the energy counter.
# llama generates 1000 tokens/s on gpu-a and 500 on gpu-b (+60000, +30000 per minute); qwen nothing.
TOKENS = {("gpu-a", "8000", "llama"): 60000, ("gpu-b", "8000", "llama"): 30000, ("gpu-b", "8001", "qwen"): 0}

# By hand, per GPU-hour: gpu-a 1.00 (fleet H100 price) + 0.5 kW * 0.20 = 1.10; gpu-b 3.00 (its own price)
# + 0.5 kW * 0.10 (its site's electricity) = 3.05. llama runs on gpu-a 0, 1 and gpu-b 0: 2 * 1.10 + 3.05
# = 5.25 per hour for 1500 tokens/s, so 5.25 / 3600 * 1e6 / 1500 = 0.972222... per million tokens.
EXPECTED = [
    ("host_gpu:llmobs_cost:usd_per_hour", {"host": "gpu-a", "gpu": "0"}, 1.10),
    ("host:llmobs_cost:usd_per_hour", {"host": "gpu-a"}, 2.20),
    ("host:llmobs_cost:usd_per_hour", {"host": "gpu-b"}, 6.10),
    ("fleet:llmobs_cost:usd_per_hour", {}, 8.30),
    ("model:llmobs_cost:usd_per_hour", {"model_name": "llama"}, 5.25),
    ("model:llmobs_cost:usd_per_million_tokens", {"model_name": "llama"}, 0.972222222222),
    # 1500 tokens/s on 3 * 500 W = 1 token per joule = 3.6e6 tokens per kWh.
    ("model:vllm_generation_tokens_per_kwh:ratio_rate5m", {"model_name": "llama"}, 3.6e6),
    ("model:llmobs_idle_gpus:count", {"model_name": "qwen"}, 1),
    ("model:llmobs_idle_gpus:count", {"model_name": "llama"}, 0),
    ("fleet:llmobs_idle_gpu_cost:usd_per_hour", {}, 3.05),
    # qwen's one GPU is idle at each 1-minute step of the day with a recorded idle count, from 1m (the first
    # rate) to 10m: 10 GPU-minutes, or 9 where the subquery reads the count before the 10m evaluation lands.
    ("model:llmobs_idle_gpu_hours:sum1d", {"model_name": "qwen"}, (9 / 60, 10 / 60)),
]


def _inputs() -> list[dict[str, str]]:
    series = []
    for host, gpu in GPUS:
        labels = f'host="{host}", gpu="{gpu}", UUID="GPU-{host}-{gpu}", modelName="{H100}"'
        series += [{"series": f"DCGM_FI_DEV_GPU_TEMP{{{labels}}}", "values": "50x15"},
                   {"series": f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{labels}}}", "values": "0+30000000x15"}]
    series += [{"series": f'vllm:generation_tokens_total{{host="{host}", instance="{host}:{port}",'
                          f' model_name="{model}"}}', "values": f"0+{per_minute}x15"}
               for (host, port, model), per_minute in TOKENS.items()]
    return series


def _check(record: str, labels: dict[str, str], value: float | tuple[float, float]) -> dict[str, Any]:
    """The rule's one series has `labels` and, per GPU, the GPU's identity it keeps."""
    kept = {**labels, **({"UUID": f"GPU-{labels['host']}-{labels['gpu']}", "modelName": H100} if "gpu" in labels
                         else {})}
    return within(record, labels, value, kept)


def test_cost_per_million_tokens_matches_the_hand_computed_value(promtool: str, tmp_path: Path) -> None:
    checks = [_check(*expected) for expected in EXPECTED]
    result = promtool_recording_test(promtool, tmp_path, "cost.test.yml", SETTINGS, _inputs(), checks)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_prices_resolve_host_over_site_over_fleet() -> None:
    prices = yaml.safe_load(render_rule_files(load_settings(SETTINGS))["prices.yml"])["groups"][0]["rules"]
    found = {(rule["record"], tuple(sorted(rule.get("labels", {}).items()))): rule["expr"] for rule in prices}
    assert found == {
        ("llmobs:gpu_hour_price:usd", (("modelName", H100),)): "vector(1)",
        ("llmobs:electricity_price:usd_per_kwh", ()): "vector(0.2)",
        ("llmobs:host_gpu_hour_price:usd", (("host", "gpu-b"), ("modelName", H100))): "vector(3)",
        ("llmobs:host_electricity_price:usd_per_kwh", (("host", "gpu-b"),)): "vector(0.1)",
    }


BAD_COSTS = [
    ({"gpus": {"H100": {"hour_usd": 2}}}, "cost.gpus.H100", "use one of ['A100-SXM'"),
    ({"gpus": {"H100-SXM": {"purchase_usd": 30000}}}, "cost.gpus.H100-SXM", "needs amortisation_years"),
    ({"gpus": {"T4": {"hour_usd": 0.3, "purchase_usd": 2000}}}, "cost.gpus.T4", "give either hour_usd"),
    ({"gpus": {"T4": {"hour_usd": -1}}}, "cost.gpus.T4.hour_usd", "greater than 0"),
    ({"electricity_kwh_usd": 0}, "cost.electricity_kwh_usd", "greater than 0"),
    ({"hosts": {"n1": {"gpus": {"B200": {"hour_usd": 5}}}}}, "cost.hosts.n1.gpus.B200", "catalog/gpus.yaml"),
    ({"sites": {"a": {"hosts": ["n1"]}, "b": {"hosts": ["n1"]}}}, "cost.sites.b.hosts", "n1 is also in site a"),
    ({"sites": {"a": {"electricity_kwh_usd": 0.1}}}, "cost.sites.a.hosts", "Field required"),
]


@pytest.mark.parametrize(("cost", "field", "words"), BAD_COSTS, ids=[case[1] for case in BAD_COSTS])
def test_bad_cost_settings_name_the_field_and_the_fix(cost: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"cost": cost})
    errors = getattr(caught.value, "errors", [caught.value])
    matching = [e for e in errors if e.field == field]
    assert matching, f"no error names {field}: {[str(e) for e in errors]}"
    assert any(words in f"{e.problem} {e.fix}" for e in matching), [str(e) for e in matching]
    assert all(e.fix for e in errors), "every error says how to fix it"
