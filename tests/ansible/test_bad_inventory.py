"""Bad inventories and settings, as the roles' filters get them: every one is refused by the filter that
the role's validate step calls, before any file is written on a host, with the inventory variable and
the fix named. The count is printed (docs/reliability.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llmobs import deploy
from llmobs.errors import ConfigError

MON1 = {"name": "mon-01", "address": "10.0.0.10", "gpu": False, "monitoring": True}
MON2 = {"name": "mon-02", "address": "10.0.0.11", "gpu": False, "monitoring": True}
GPU1 = {"name": "gpu-a01", "address": "10.0.1.11", "gpu": True, "monitoring": False, "gpu_count": 8,
        "vllm_endpoints": [{"model": "llama", "port": 8000, "gpus": [0, 1]}]}
SLACK = {"receivers": {"chat": [{"kind": "slack", "channel": "#gpu", "api_url_secret": "SLACK_API_URL"}]},
         "default_receiver": "chat"}


def settings(overrides: dict[str, Any]) -> Callable[[], Any]:
    return lambda: deploy.settings_validate(overrides)


def prometheus(hosts: list[dict[str, Any]] | None = None, options: dict[str, Any] | None = None,
               me: str = "mon-01", overrides: dict[str, Any] | None = None) -> Callable[[], Any]:
    return lambda: deploy.prometheus_files(overrides or {}, hosts or [MON1, MON2, GPU1], me, options)


def gpu(**changes: Any) -> list[dict[str, Any]]:
    return [MON1, MON2, {**GPU1, **changes}]


def endpoint(**changes: Any) -> list[dict[str, Any]]:
    return gpu(vllm_endpoints=[{**GPU1["vllm_endpoints"][0], **changes}])


STORE = {"host": "mon-01"}
# How the endpoint_prober role's filter names the settings it merged with the GPU hosts' endpoints.
WITH_ENDPOINTS = "llmobs_settings (with every GPU host's vllm_endpoints and llmobs_endpoints)"


def prober(overrides: dict[str, Any]) -> Callable[[], Any]:
    return lambda: deploy.prober_files(overrides, [MON1, GPU1])


# (id, the filter call, the variable the error must name, words of its problem or fix)
CASES: list[tuple[str, Callable[[], Any], str, str]] = [
    # llmobs_settings: types, ranges, unknown keys, durations, SLOs, receivers, secrets
    ("threshold of the wrong type", settings({"thresholds": {"queue_waiting_requests_warning": "many"}}),
     "llmobs_settings.thresholds.queue_waiting_requests_warning", "valid integer"),
    ("threshold out of range", settings({"thresholds": {"gpu_power_over_limit_ratio": 3}}),
     "llmobs_settings.thresholds.gpu_power_over_limit_ratio", "less than or equal to 2"),
    ("unknown threshold", settings({"thresholds": {"gpu_temp_warning": 5}}),
     "llmobs_settings.thresholds.gpu_temp_warning", "check its spelling"),
    ("unknown top-level key", settings({"treshold": {}}), "llmobs_settings.treshold", "check its spelling"),
    ("malformed resolve_timeout", settings({"alertmanager": {"resolve_timeout": "5 minutes"}}),
     "llmobs_settings.alertmanager.resolve_timeout", "should match pattern"),
    ("malformed `for` of an alert", settings({"alerting": {"rules": {"GpuXidFatal": {"for": "soon"}}}}),
     "llmobs_settings.alerting.rules.GpuXidFatal.for", "should match pattern"),
    ("malformed SLO period", settings({"slo": {"period": "30days"}}), "llmobs_settings.slo.period", "pattern"),
    ("SLO objective above 1", settings({"slo": {"defaults": {"availability_objective": 1.2}}}),
     "llmobs_settings.slo.defaults.availability_objective", "less than 1"),
    ("TTFT target off the bucket boundaries", settings({"slo": {"defaults": {"ttft_seconds": 0.3}}}),
     "llmobs_settings.slo.defaults.ttft_seconds", "use a boundary such as 0.25"),
    ("unknown default receiver", settings({"alertmanager": {"default_receiver": "oncall"}}),
     "llmobs_settings.alertmanager.default_receiver", "unknown receiver 'oncall'"),
    ("unknown route receiver", settings({"alertmanager": {"routes": [{"receiver": "pager"}]}}),
     "llmobs_settings.alertmanager.routes[0].receiver", "define it under alertmanager.receivers"),
    ("webhook URL without a scheme", settings({"alertmanager": {"receivers": {"hook": [
        {"kind": "webhook", "url": "hooks.example.com/alerts"}]}}}),
     "llmobs_settings.alertmanager.receivers.hook[0].webhook.url", "pattern"),
    ("SMTP relay without a port", settings({"alertmanager": {"receivers": {"mail": [
        {"kind": "email", "to": "a@example.com", "from": "b@example.com", "smarthost": "smtp.example.com"}]}}}),
     "llmobs_settings.alertmanager.receivers.mail[0].email.smarthost", "pattern"),
    ("secret variable with a bad name", settings({"alertmanager": {"receivers": {"hook": [
        {"kind": "webhook", "url_secret": "my-hook-url"}]}}}),
     "llmobs_settings.alertmanager.receivers.hook[0].webhook.url_secret", "pattern"),
    ("missing receiver secret", lambda: deploy.alertmanager_files({"alertmanager": SLACK}, {}),
     "llmobs_settings.alertmanager.receivers.chat[0].api_url_secret", "add SLACK_API_URL to alertmanager_secrets"),
    ("route to an unknown team", settings({"alertmanager": {"routes": [{"receiver": "default", "team": ["gpu"]}]}}),
     "llmobs_settings.alertmanager.routes[0].team", "alerting.teams"),
    ("host label that is no label name", settings({"labels": {"host": "host-name"}}),
     "llmobs_settings.labels.host", "pattern"),
    # the hosts of the inventory
    ("duplicate host", prometheus([MON1, GPU1, GPU1]), "hosts[2].name", "list each host once"),
    ("exporter port out of range", prometheus(gpu(ports={"node": 70000})), "gpu-a01: node_exporter_port",
     "less than or equal to 65535"),
    ("exporter port of the wrong type", prometheus(gpu(ports={"dcgm": "ninety-four"})),
     "gpu-a01: dcgm_exporter_port", "valid integer"),
    ("empty scrape address", prometheus(gpu(address="")), "gpu-a01: llmobs_scrape_address", "pattern"),
    ("scrape address with a port", prometheus(gpu(address="10.0.1.11:9100")), "gpu-a01: llmobs_scrape_address",
     "pattern"),
    ("unknown exporter", prometheus(gpu(exporters=["vllm"])), "gpu-a01: llmobs_exporters[0]", "'node' or 'dcgm'"),
    ("GPU index beyond the host's GPUs", prometheus(endpoint(gpus=[7, 8])), "gpu-a01: vllm_endpoints[0].gpus",
     "use indexes 0-7"),
    ("negative GPU index", prometheus(endpoint(gpus=[-1])), "gpu-a01: vllm_endpoints[0].gpus[0]",
     "greater than or equal to 0"),
    ("GPU count out of range", prometheus(gpu(gpu_count=0)), "gpu-a01: gpu_preflight_expected_gpu_count",
     "greater than or equal to 1"),
    ("one GPU for two engines", prometheus(gpu(vllm_endpoints=[{"model": "a", "gpus": [0]},
                                                                {"model": "b", "port": 8001, "gpus": [0]}])),
     "llmobs_settings (with every GPU host's vllm_endpoints and llmobs_endpoints).vllm_endpoints[1].gpus",
     "give each GPU to one engine"),
    ("engine port 0", prometheus(endpoint(port=0)), "gpu-a01: vllm_endpoints[0].port", "greater than or equal to 1"),
    ("prometheus role on a host outside the monitoring group", prometheus(me="gpu-a01"), "prometheus host",
     "run the role on monitoring hosts"),
    # the prometheus role's options
    ("remote_write URL without a scheme", prometheus(options={"remote_write": [{"url": "mimir:9009"}]}),
     "prometheus_remote_write[0].url", "pattern"),
    ("remote_write password inline", prometheus(options={"remote_write": [
        {"url": "https://m/push", "basic_auth": {"username": "u", "password": "s"}}]}),
     "prometheus_remote_write[0]", "use password_file"),
    ("malformed scrape interval", prometheus(options={"scrape": {"scrape_interval": "often"}}),
     "prometheus_scrape_options.scrape_interval", "pattern"),
    ("scrape timeout above the interval", prometheus(options={"scrape": {"scrape_timeout": "20s"}}),
     "prometheus_scrape_options", "longer than the shortest scrape interval"),
    ("external label that is no label name", prometheus(options={"external_labels": {"site-name": "fra1"}}),
     "prometheus_external_labels.site-name.[key]", "pattern"),
    ("replica label among the external labels", prometheus(options={
        "external_labels": {"replica": "mon-01"}, "replica": {"replica": "mon-01"}}),
     "prometheus_external_labels.replica", "set the replica only in prometheus_replica"),
    ("scrape CA that is no PEM", prometheus(options={"scrape_auth": {"node": {"tls": True, "ca_cert": "ca.pem"}}}),
     "prometheus_scrape_auth.node.ca_cert", "pattern"),
    ("unknown scrape_auth key", prometheus(options={"scrape_auth": {"node": {"user": "x"}}}),
     "prometheus_scrape_auth.node.user", "check its spelling"),
    # llmobs_store
    ("store on a host outside the monitoring group", prometheus(options={"store": {"host": "gpu-a01"}}),
     "llmobs_store.host", "use one of ['mon-01', 'mon-02']"),
    ("store port out of range", lambda: deploy.store_environment({**STORE, "port": 0}),
     "llmobs_store.port", "greater than or equal to 1"),
    ("store retention malformed", lambda: deploy.store_environment({**STORE, "retention": "forever"}),
     "llmobs_store.retention", "pattern"),
    ("store dedup interval above the scrape interval",
     lambda: deploy.store_environment({**STORE, "dedup_interval": "1m"}), "llmobs_store.dedup_interval",
     "set it to 10s or less"),
    ("unknown remote_write queue setting", prometheus(options={"store": {**STORE, "queue_config": {"retries": 3}}}),
     "llmobs_store.queue_config.retries", "max_backoff"),
    ("store scheme that is no HTTP", lambda: deploy.store_environment({**STORE, "scheme": "ftp"}),
     "llmobs_store.scheme", "pattern"),
    ("unknown store key", lambda: deploy.store_environment({**STORE, "replicas": 2}), "llmobs_store.replicas",
     "check its spelling"),
    # the endpoint prober (endpoint_prober role)
    ("probe timeout not shorter than the interval", prober({"prober": {"interval": "10s", "timeout": "10s"}}),
     f"{WITH_ENDPOINTS}.prober.timeout", "shorten prober.timeout"),
    ("probe settings for an undeclared endpoint", prober({"prober": {"endpoints": {"gpu-zz:8000": {}}}}),
     f"{WITH_ENDPOINTS}.prober.endpoints.gpu-zz:8000", "10.0.1.11:8000"),
    ("API key given as a value instead of a file", prober({"prober": {"api_key_file": "sk-live-123"}}),
     f"{WITH_ENDPOINTS}.prober.api_key_file", "pattern"),
    ("client URL with credentials in it", prober({"prober": {"endpoints": {
        "10.0.1.11:8000": {"url": "https://user:sk-live-123@llm.example.com"}}}}),
     f"{WITH_ENDPOINTS}.prober.endpoints.10.0.1.11:8000.url", "pattern"),
    # Grafana's provisioning
    ("datasource URL without a scheme", lambda: deploy.grafana_files({}, {"prometheus_url": "prometheus:9090"}),
     "grafana.prometheus_url", "pattern"),
    ("store as default datasource without its URL", lambda: deploy.grafana_files({}, {"default_datasource": "store"}),
     "grafana", "default_datasource store needs store_url"),
    ("unknown datasource choice", lambda: deploy.grafana_files({}, {"default_datasource": "thanos"}),
     "grafana.default_datasource", "'prometheus' or 'store'"),
]


@pytest.mark.parametrize(("call", "variable", "words"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_naming_the_variable_and_the_fix(call: Callable[[], Any], variable: str,
                                                              words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        call()
    errors = caught.value.all
    named = [e for e in errors if e.field == variable]
    assert named, f"no error names {variable}: {[str(e) for e in errors]}"
    assert any(words in f"{e.problem} {e.fix}" for e in named), [str(e) for e in named]
    assert all(e.fix for e in errors), "every error says how to fix it"


def test_the_count_of_refused_inputs(figure) -> None:
    assert len(CASES) >= 30
    figure(f"{len(CASES)} invalid inventories and settings refused, each naming its variable and the fix")
