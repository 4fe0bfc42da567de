"""Traces without the images (llmobs.tracing): the generated Collector and Jaeger configurations pass the
structural check, every way of breaking one is refused naming the field and the fix, the settings refuse
what the generator cannot write, the vLLM flags and the Grafana datasource follow `otel.traces`, and the
otel_collector role is wired where site.yml and the grafana role expect it. The live path (spans through a
real Collector into Jaeger) is test_traces_live.py, skipped where the images are absent."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmobs import deploy, images, tracing
from llmobs.conventions import OTLP_GRPC_PORT, TRACE_STORE_URL
from llmobs.dashboards.provisioning import TRACES_UID
from llmobs.errors import ConfigError
from llmobs.settings import load_settings
from llmobs.tracing.check import check_collector_config

REPO = Path(__file__).resolve().parents[2]
ON = {"otel": {"traces": {"enabled": True}}}


def _collector() -> dict[str, Any]:
    return copy.deepcopy(tracing.collector_config(load_settings().otel.traces))


def _errors(config: Any) -> list[ConfigError]:
    return check_collector_config(config, OTLP_GRPC_PORT)


def test_the_generated_configurations_pass_the_check_and_are_the_committed_ones() -> None:
    traces = load_settings().otel.traces
    assert check_collector_config(tracing.collector_config(traces), OTLP_GRPC_PORT) == []
    assert check_collector_config(tracing.store_config(traces)) == []
    committed = {path: (REPO / path).read_text() for path in (tracing.COLLECTOR_FILE, tracing.STORE_FILE)}
    lab = load_settings(yaml.safe_load((REPO / "compose/lab-settings.yml").read_text()))
    assert tracing.artifacts(lab) == committed


def test_the_collector_listens_for_otlp_limits_memory_first_and_exports_to_the_store() -> None:
    config = yaml.safe_load((REPO / tracing.COLLECTOR_FILE).read_text())
    protocols = config["receivers"]["otlp"]["protocols"]
    assert (protocols["grpc"]["endpoint"], protocols["http"]["endpoint"]) == ("0.0.0.0:4317", "0.0.0.0:4318")
    assert config["service"]["pipelines"]["traces"]["processors"] == ["memory_limiter", "batch"]
    assert config["exporters"] == {"otlp_grpc/jaeger": {"endpoint": "jaeger:4317", "tls": {"insecure": True}}}
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert (reader["host"], reader["port"]) == ("0.0.0.0", 8888)


def test_the_settings_reach_the_configurations() -> None:
    traces = load_settings({"otel": {"traces": {"memory_limit_mib": 2000, "batch_timeout": "2m",
                                                "store": {"retention": "7d"}}}}).otel.traces
    limiter = tracing.collector_config(traces)["processors"]["memory_limiter"]
    assert (limiter["limit_mib"], limiter["spike_limit_mib"]) == (2000, 400)
    assert tracing.collector_config(traces)["processors"]["batch"]["timeout"] == "120s"
    badger = tracing.store_config(traces)["extensions"]["jaeger_storage"]["backends"]["llmobs"]["badger"]
    assert badger["ttl"] == {"spans": "604800s"}, "Go durations have no d unit: written in seconds"


def _drop_receiver(config: dict) -> None:
    config["receivers"].clear()


def _unused_exporter(config: dict) -> None:
    config["exporters"]["debug"] = {}


def _unlisted_extension(config: dict) -> None:
    config["extensions"] = {"health_check": {"endpoint": "0.0.0.0:13133"}}


def _undefined_extension(config: dict) -> None:
    config["service"]["extensions"] = ["zpages"]


def _bad_port(config: dict) -> None:
    config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] = "0.0.0.0:70000"


def _no_port(config: dict) -> None:
    config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] = "localhost"


def _to_the_ui(config: dict) -> None:
    config["exporters"]["otlp_grpc/jaeger"]["endpoint"] = "jaeger:16686"


def _http_to_grpc_port(config: dict) -> None:
    config["exporters"] = {"otlp_http/jaeger": {"endpoint": "http://jaeger:4317"}}
    config["service"]["pipelines"]["traces"]["exporters"] = ["otlp_http/jaeger"]


def _limiter_last(config: dict) -> None:
    config["service"]["pipelines"]["traces"]["processors"] = ["batch", "memory_limiter"]


def _no_exporters(config: dict) -> None:
    config["service"]["pipelines"]["traces"]["exporters"] = []
    config["exporters"].clear()


def _bad_signal(config: dict) -> None:
    config["service"]["pipelines"]["spans"] = config["service"]["pipelines"].pop("traces")


def _bad_metrics_port(config: dict) -> None:
    config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]["port"] = "8888"


def _misspelt_section(config: dict) -> None:
    config["processor"] = config.pop("processors")


BROKEN = [
    ("undefined receiver", _drop_receiver, "service.pipelines.traces.receivers", "'otlp' is not defined",
     "define otlp under receivers"),
    ("unused exporter", _unused_exporter, "exporters.debug", "no pipeline uses it", "add debug to a pipeline"),
    ("extension not listed", _unlisted_extension, "extensions.health_check", "not listed in service.extensions",
     "add health_check to service.extensions"),
    ("listed extension undefined", _undefined_extension, "service.extensions", "'zpages' is not defined",
     "define zpages under extensions"),
    ("port out of range", _bad_port, "receivers.otlp.protocols.grpc.endpoint", "'0.0.0.0:70000' is not host:port",
     "write host:port"),
    ("endpoint without port", _no_port, "receivers.otlp.protocols.http.endpoint", "'localhost' is not host:port",
     "write host:port"),
    ("exporter at the query port", _to_the_ui, "exporters.otlp_grpc/jaeger.endpoint",
     "sends to port 16686, not the trace store's OTLP gRPC port 4317", "jaeger:4317"),
    ("OTLP/HTTP exporter at the gRPC port", _http_to_grpc_port, "exporters.otlp_http/jaeger.endpoint",
     "sends to port 4317, not the trace store's OTLP HTTP port 4318", "jaeger:4318"),
    ("memory_limiter after batch", _limiter_last, "service.pipelines.traces.processors",
     "memory_limiter comes after batch", "put memory_limiter first"),
    ("pipeline without exporters", _no_exporters, "service.pipelines.traces.exporters", "is empty",
     "list at least one of the exporters"),
    ("pipeline named after no signal", _bad_signal, "service.pipelines.spans", "'spans' is not a signal",
     "traces or traces/vllm"),
    ("metrics port a string", _bad_metrics_port, "service.telemetry.metrics.readers[0].pull.exporter.prometheus.port",
     "'8888' is not a port", "e.g. 8888"),
    ("misspelt section", _misspelt_section, "processor", "is not a section", "use only receivers"),
]


@pytest.mark.parametrize(("case", "breaks", "field", "problem", "fix"), BROKEN, ids=[case[0] for case in BROKEN])
def test_a_broken_configuration_is_refused_naming_the_field_and_the_fix(case: str, breaks: Any, field: str,
                                                                        problem: str, fix: str) -> None:
    config = _collector()
    breaks(config)
    errors = _errors(config)
    matching = [error for error in errors if error.field == field]
    assert matching, f"{case}: no error on {field}: {[str(e) for e in errors]}"
    assert problem in matching[0].problem and fix in matching[0].fix, str(matching[0])


def test_every_error_of_a_configuration_is_reported_at_once_with_its_file() -> None:
    config = _collector()
    _unused_exporter(config)
    _to_the_ui(config)
    errors = check_collector_config(config, OTLP_GRPC_PORT, "otel/collector.yaml")
    assert {error.field for error in errors} == {"exporters.debug", "exporters.otlp_grpc/jaeger.endpoint"}
    assert all(str(error).startswith("otel/collector.yaml: ") for error in errors)
    assert _errors(["not", "a", "mapping"])[0].problem == "is not a mapping"


def test_the_generator_refuses_a_store_endpoint_off_its_otlp_port_and_writes_nothing() -> None:
    with pytest.raises(ConfigError) as raised:
        deploy.tracing_files(ON, "jaeger:16686")
    assert raised.value.field == "otel_collector.exporters.otlp_grpc/jaeger.endpoint"
    assert "point it at the store's OTLP receiver" in raised.value.fix


@pytest.mark.parametrize(("traces", "field", "text"), [
    ({"detailed_traces": ["scheduler"]}, "llmobs_settings.otel.traces.detailed_traces[0]",
     "'model', 'worker' or 'all'"),
    ({"store": {"retention": "500ms"}}, "llmobs_settings.otel.traces", "store.retention 500ms is under a second"),
    ({"memory_limit_mib": 16}, "llmobs_settings.otel.traces.memory_limit_mib", "greater than or equal to 64"),
    ({"sampling": 0.1}, "llmobs_settings.otel.traces.sampling", ""),
])
def test_bad_trace_settings_are_refused_naming_the_field(traces: dict, field: str, text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        deploy.tracing_files({"otel": {"traces": traces}})
    assert raised.value.field == field, str(raised.value)
    assert text in str(raised.value)


def test_vllm_gets_the_collectors_grpc_endpoint_and_the_detailed_traces_asked_for() -> None:
    assert deploy.tracing_vllm_args(ON, "10.0.0.10") == ["--otlp-traces-endpoint", "grpc://10.0.0.10:4317"]
    detailed = {"otel": {"traces": {"enabled": True, "detailed_traces": ["model", "worker"]}}}
    assert deploy.tracing_vllm_args(detailed, "mon-01") == [
        "--otlp-traces-endpoint", "grpc://mon-01:4317", "--collect-detailed-traces", "model", "worker"]


def test_traces_are_off_by_default_and_grafana_gets_jaeger_only_where_they_are_on() -> None:
    assert not deploy.tracing_enabled(None) and deploy.tracing_enabled(ON)
    plain = yaml.safe_load(deploy.grafana_files({})["provisioning/datasources/llmobs.yaml"])["datasources"]
    assert TRACES_UID not in {source["uid"] for source in plain}
    files = deploy.grafana_files(ON, {"traces_url": "http://jaeger:16686/"})
    sources = yaml.safe_load(files["provisioning/datasources/llmobs.yaml"])["datasources"]
    traces = next(source for source in sources if source["uid"] == TRACES_UID)
    assert traces == {"name": "Traces", "uid": "traces", "type": "jaeger", "access": "proxy",
                      "url": "http://jaeger:16686", "editable": False}
    lab = yaml.safe_load((REPO / "grafana/provisioning/datasources/llmobs.yaml").read_text())["datasources"]
    assert [source["url"] for source in lab if source["uid"] == TRACES_UID] == [TRACE_STORE_URL]


def test_the_images_are_pinned_without_a_stand_in() -> None:
    pinned = images.pins()
    assert pinned["OTELCOL_IMAGE"] == "otel/opentelemetry-collector-contrib:0.159.0"
    assert pinned["JAEGER_IMAGE"] == "jaegertracing/jaeger:2.20.0"
    assert images.STANDINS["OTELCOL_IMAGE"] is None and images.STANDINS["JAEGER_IMAGE"] is None


def _compose(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "compose/services" / name).read_text())


def test_the_lab_runs_them_under_the_tracing_profile_publishing_on_loopback_only() -> None:
    collector = _compose("otel-collector.yaml")["services"]["otel-collector"]
    jaeger = _compose("jaeger.yaml")["services"]["jaeger"]
    assert collector["profiles"] == ["tracing"] and jaeger["profiles"] == ["tracing"]
    for port in collector["ports"] + jaeger["ports"]:
        assert port.startswith("${LLMOBS_BIND_ADDRESS:-127.0.0.1}:"), port
    assert not any(port.endswith(":4317") for port in jaeger["ports"]), "spans reach Jaeger through the Collector only"
    included = {entry["path"] for entry in yaml.safe_load((REPO / "compose/compose.yaml").read_text())["include"]}
    assert {"services/otel-collector.yaml", "services/jaeger.yaml"} <= included


def test_site_runs_the_role_on_monitoring_hosts_only_where_traces_are_on() -> None:
    site = yaml.safe_load((REPO / "site.yml").read_text())
    checks = site[0]["vars"]
    assert "otel_collector" in checks["__site_roles"]["monitoring"]
    assert "otel_collector" in checks["__site_controller_checks"]
    assert "llmobs_tracing_enabled" in checks["__site_host_roles"]
    monitoring = next(play for play in site if play["name"] == "The monitoring stack")
    role = next(entry for entry in monitoring["roles"] if isinstance(entry, dict) and entry["role"] == "otel_collector")
    assert role["when"] == "llmobs_settings | default({}) | llmobs_tracing_enabled"
    removal = site[-1]["tasks"][0]
    assert removal["vars"]["otel_collector_state"] == "absent" and "'otel_collector'" in removal["loop"]


def test_the_role_checks_both_configurations_with_the_images_own_validate() -> None:
    described = yaml.safe_load((REPO / "roles/otel_collector/vars/main.yml").read_text())
    collector = described["__otel_collector_compose_service"]
    jaeger = described["__otel_collector_jaeger_compose_service"]
    assert collector["validate"] == [{"entrypoint": "/otelcol-contrib",
                                      "args": ["validate", "--config=/etc/otelcol-contrib/collector.yaml"]}]
    assert jaeger["validate"][0]["args"] == ["validate", "--config=/etc/jaeger/jaeger.yaml"]
    assert collector["resets"] == ["services.otel-collector.profiles"]
    assert jaeger["resets"] == ["services.jaeger.profiles"]
    # What the role renders is what the generator checked, one file per service.
    validate = (REPO / "roles/otel_collector/tasks/validate.yml").read_text()
    assert "llmobs_tracing_files" in validate and "llmobs_tracing_vllm_args" in validate
    assert set(deploy.tracing_files(ON)) == {"collector.yaml", "jaeger.yaml"}


def test_prometheus_scrapes_the_collector_where_it_runs_and_alerts_on_spans_not_sent() -> None:
    lab = yaml.safe_load((REPO / "prometheus/prometheus.yml").read_text())
    job = next(config for config in lab["scrape_configs"] if config["job_name"] == "otelcol")
    assert job["dns_sd_configs"] == [{"names": ["otel-collector"], "type": "A", "port": 8888}], (
        "the lab finds the Collector only while its container runs: no down target without the tracing profile")
    tasks = yaml.safe_load((REPO / "roles/otel_collector/tasks/main.yml").read_text())
    fact = next(task for task in tasks if "ansible.builtin.set_fact" in task)["ansible.builtin.set_fact"]
    assert "compose_service_results['otel-collector'].running" in fact["otel_collector_running"]
    rules = yaml.safe_load((REPO / "prometheus/rules/alerts.yml").read_text())
    alert = next(rule for group in rules["groups"] for rule in group["rules"]
                 if rule.get("alert") == "OtelCollectorSpansNotSent")
    assert 'otelcol_exporter_send_failed_spans{job="otelcol"}' in alert["expr"]
