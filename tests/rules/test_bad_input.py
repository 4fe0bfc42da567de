"""Bad input, in the settings or in the catalog, is a ConfigError that names the field and the fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llmobs import catalog as catalog_mod
from llmobs.errors import ConfigError
from llmobs.rules import render_rule_files
from llmobs.settings import load_settings

SETTINGS_CASES = [
    # (overrides, field, words of the problem or fix)
    ({"thresholds": {"gpu_temp_margin_warning_celsius": 40}}, "thresholds.gpu_temp_margin_warning_celsius",
     "less than or equal to 30"),
    ({"thresholds": {"engine_error_ratio_warning": 0.2, "engine_error_ratio_critical": 0.1}}, "thresholds",
     "engine_error_ratio_critical must be above engine_error_ratio_warning"),
    ({"thresholds": {"engine_stuck_window": "two minutes"}}, "thresholds.engine_stuck_window", "should match pattern"),
    ({"slo": {"defaults": {"ttft_seconds": 0.3}}}, "slo.defaults.ttft_seconds", "use a boundary such as 0.25"),
    ({"slo": {"models": {"llama": {"inter_token_latency_seconds": 0.12}}}},
     "slo.models.llama.inter_token_latency_seconds", "is not a bucket boundary of vllm:inter_token_latency_seconds"),
    ({"slo": {"defaults": {"availability_objective": 1}}}, "slo.defaults.availability_objective", "less than 1"),
    ({"slo": {"defaults": {"ttft_seconds": 3.0}}}, "slo.defaults.ttft_seconds",
     "or declare the engines' --custom-histogram-buckets in slo.defaults.histogram_buckets.time_to_first_token"),
    ({"slo": {"models": {"llama": {"ttft_seconds": 2.0, "histogram_buckets": {"time_to_first_token": [0.5, 1, 3]}}}}},
     "slo.models.llama.ttft_seconds",
     "not one of the boundaries declared in slo.models.llama.histogram_buckets.time_to_first_token"),
    ({"slo": {"models": {"llama": {"histogram_buckets": {"time_to_first_token": [1, 0.5, 3]}}}}},
     "slo.models.llama.histogram_buckets.time_to_first_token", "not strictly ascending"),
    ({"slo": {"defaults": {"histogram_buckets": {"inter_token_latency": []}}}},
     "slo.defaults.histogram_buckets.inter_token_latency", "smallest first"),
    ({"slo": {"defaults": {"histogram_buckets": {"ttft": [0.5, 1.0]}}}}, "slo.defaults.histogram_buckets.ttft",
     "use one of inter_token_latency, iteration_tokens, request_latency"),
    ({"slo": {"defaults": {"histogram_buckets": {"time_to_first_token": ["fast"]}}}},
     "slo.defaults.histogram_buckets.time_to_first_token[0]", "valid number"),
    ({"thresholds": {"pcie_replays_per_minute_warning": -1}}, "thresholds.pcie_replays_per_minute_warning",
     "greater than or equal to 0"),
    ({"alertmanager": {"routes": [{"receiver": "pagerduty", "severity": ["critical"]}]}},
     "alertmanager.routes[0].receiver", "unknown receiver 'pagerduty'"),
    ({"alertmanager": {"watchdog": {"receiver": "deadman"}}}, "alertmanager.watchdog.receiver", "define it under"),
    ({"alertmanager": {"routes": [{"receiver": "default", "team": ["gpu"]}]}}, "alertmanager.routes[0].team",
     "use one of ['gpu-infra', 'ml-serving', 'platform']"),
    ({"alertmanager": {"routes": [{"receiver": "default", "severity": ["page"]}]}},
     "alertmanager.routes[0].severity[0]", "'critical', 'warning' or 'info'"),
    ({"alertmanager": {"receivers": {"chat": [{"kind": "slack", "channel": "#a", "api_url": "https://hooks/x"}]}}},
     "alertmanager.receivers.chat[0].slack.api_url", "Extra inputs are not permitted"),
    ({"alertmanager": {"receivers": {"chat": [{"kind": "webhook"}]}}}, "alertmanager.receivers.chat[0].webhook",
     "give exactly one of url, url_secret"),
    ({"alertmanager": {"receivers": {"chat": [{"kind": "teams", "url": "https://x"}]}}},
     "alertmanager.receivers.chat[0]", "'webhook', 'slack', 'email', 'pagerduty'"),
    ({"alerting": {"rules": {"GpuXidFatl": {"for": "1m"}}}}, "alerting.rules.GpuXidFatl", "GpuXidFatal"),
    ({"alerting": {"rules": {"GpuMissing/warning": {"enabled": False}}}}, "alerting.rules.GpuMissing/warning",
     "GpuMissing/critical"),
    ({"labels": {"host": "host-name"}}, "labels.host", "should match pattern"),
    ({"vllm_endpoints": {"n1": [{"model": "a", "gpus": [0, 1]}, {"model": "b", "port": 8001, "gpus": [1]}]}},
     "vllm_endpoints[1].gpus", "GPU 1 of n1 is already used by n1:8000"),
    ({"vllm_endpoints": [{"host": "n1", "model": "a", "gpus": []}]}, "vllm_endpoints[0].gpus", "at least 1 item"),
]


@pytest.mark.parametrize(("overrides", "field", "words"), SETTINGS_CASES,
                         ids=[case[1] for case in SETTINGS_CASES])
def test_bad_settings_name_the_field_and_the_fix(overrides: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides)
    errors = getattr(caught.value, "errors", [caught.value])
    matching = [e for e in errors if e.field == field]
    assert matching, f"no error names {field}: {[str(e) for e in errors]}"
    assert any(words in f"{e.problem} {e.fix}" for e in matching), [str(e) for e in matching]
    assert all(e.fix for e in errors), "every error says how to fix it"


def _catalog_with(change) -> dict[str, Any]:
    data = copy.deepcopy(catalog_mod.raw())
    change(data)
    return data


def _family(data: dict[str, Any], page: str) -> dict[str, Any]:
    return next(f for f in data["alerts"]["families"] if f["page"] == page)


CATALOG_CASES = [
    (lambda d: _family(d, "gpu-power")["alerts"].append(dict(_family(d, "gpu-power")["alerts"][0])),
     "alerts", "has two warning rules"),
    (lambda d: d["slos"]["alert_windows"][0].update(long="2h30m"), "slos.alert_windows[0].long",
     "should match pattern"),
    (lambda d: d["slos"]["alert_windows"][0].update(long="12h"), "slos", "not in sli_windows"),
    (lambda d: d["slos"]["slos"][1]["latency"].update(histograms=["vllm:num_requests_running"]), "(top level)",
     "vllm:num_requests_running is not a histogram"),
    (lambda d: _family(d, "gpu-xid")["runbook"].update(act=[]), "alerts.families[0].runbook.act",
     "at least 1 item"),
    (lambda d: _family(d, "engine-down")["alerts"][0].update(severity="page"),
     "alerts.families[7].alerts[0].severity", "'critical', 'warning' or 'info'"),
]


@pytest.mark.parametrize(("change", "field", "words"), CATALOG_CASES, ids=[case[1] for case in CATALOG_CASES])
def test_invalid_catalog_entries_are_refused(change, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        catalog_mod.validate(_catalog_with(change))
    errors = getattr(caught.value, "errors", [caught.value])
    assert any(e.field == field and words in str(e) for e in errors), [str(e) for e in errors]


@pytest.mark.parametrize(("expr", "words"), [
    ("host_gpu:dcgm_temp_margin:celcius < 5", "reads host_gpu:dcgm_temp_margin:celcius, which no scrape exposes"),
    ("DCGM_FI_DEV_FB_TOTAL - DCGM_FI_DEV_FB_USED < 1", "reads DCGM_FI_DEV_FB_TOTAL"),
    ("sum(rate(vllm:request_total[5m]) > 0", "not valid PromQL"),
    ("<< t.no_such_threshold >> > 1", "template error"),
])
def test_alert_expressions_read_only_known_series(expr: str, words: str) -> None:
    catalog = catalog_mod.validate(_catalog_with(lambda d: _family(d, "gpu-thermal")["alerts"][0].update(expr=expr)))
    with pytest.raises(ConfigError) as caught:
        render_rule_files(load_settings(), catalog=catalog)
    assert caught.value.field.startswith("alerts.yaml: gpu-thermal.GpuThermalMarginLow(warning).expr")
    assert words in str(caught.value)
