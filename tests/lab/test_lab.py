"""The lab end to end: real Prometheus and Alertmanager in containers, simulated GPU servers, the alert sink.

One session-wide lab (tests/conftest.py). In order:
1. every target is up and every recording rule returns data;
2. an application's OpenTelemetry GenAI metrics, pushed over OTLP, are stored and summarised by the rules;
3. a valid configuration is validated in the running container, then reloaded; one that fails validation
   is refused and the running one stays (checked while the faults run);
4. the fault campaign: every fault is injected at once, on different simulated hosts, GPUs and engines;
   each is cleared as soon as its alert reaches the alert sink with the right labels and severity, and its
   resolved notification must follow. The injection-to-notification time of each is printed;
5. the targets nobody broke (a busy and an idle GPU, two engines, the monitoring host, the pipeline)
   raised no warning or critical alert during all of that;
6. `docker compose down` then `up` keeps Prometheus' data and Alertmanager's silences.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode, urlsplit

import genai_push
import pytest
import yaml

from llmobs import catalog as catalog_mod
from llmobs.conventions import OTLP_METRICS_PATH
from llmobs.errors import ConfigError

pytestmark = [pytest.mark.docker, pytest.mark.lab]

CAMPAIGN_TIMEOUT_S = 12 * 60


@dataclass(frozen=True)
class Case:
    """A fault, where it is injected, and the notification it must produce."""

    id: str
    host: str
    fault: dict[str, Any]
    alert: str
    severity: str
    labels: dict[str, str]                       # the notification's labels must include these
    gpu: int | None = None                       # its UUID label must be this GPU's
    stop: str | None = None                      # a real engine of the lab: stopped instead of a fault

    @property
    def scope(self) -> dict[str, str]:
        """Labels of everything this fault may legitimately alert about (the healthy check excuses them)."""
        if self.gpu is not None:
            return {"host": self.host, "gpu": str(self.gpu)}
        if "instance" in self.labels:
            return {"instance": self.labels["instance"]}
        if "endpoint" in self.labels:
            return {"endpoint": self.labels["endpoint"]}
        return {"host": self.host}


GPU, ENGINE = "gpu-h100-1", "gpu-l40s-1"
LLAMACPP_PORT = 8080
# The engine-down alert covers every engine's job (catalog alerts.yaml; its name is still vLLM's).
LLAMACPP_DOWN_ALERT = "VllmEngineDown"
CASES = (
    Case("overheat", GPU, {"fault": "overheat", "gpu": 1}, "GpuThermalMarginLow", "critical",
         {"host": GPU, "gpu": "1"}, gpu=1),
    Case("xid-fatal", GPU, {"fault": "xid", "gpu": 2, "code": 119}, "GpuXidFatal", "critical",
         {"host": GPU, "gpu": "2", "xid": "119"}, gpu=2),
    Case("ecc-dbe", GPU, {"fault": "ecc-dbe", "gpu": 3}, "GpuEccDoubleBitError", "critical",
         {"host": GPU, "gpu": "3"}, gpu=3),
    Case("fall-off-bus", GPU, {"fault": "fall-off-bus", "gpu": 4}, "GpuMissing", "critical",
         {"host": GPU, "gpu": "4"}, gpu=4),
    Case("row-remap-failure", GPU, {"fault": "row-remap-failure", "gpu": 5}, "GpuRowRemapFailure", "critical",
         {"host": GPU, "gpu": "5"}, gpu=5),
    Case("thermal-throttle", GPU, {"fault": "thermal-throttle", "gpu": 7}, "GpuHardwareSlowdown", "warning",
         {"host": GPU, "gpu": "7", "clock_event": "hw_thermal"}, gpu=7),
    Case("xid-application", ENGINE, {"fault": "xid", "gpu": 0, "code": 13}, "GpuXidApplication", "warning",
         {"host": ENGINE, "gpu": "0", "xid": "13"}, gpu=0),
    Case("power-over-limit", ENGINE, {"fault": "power-over-limit", "gpu": 0}, "GpuPowerAboveLimit", "warning",
         {"host": ENGINE, "gpu": "0"}, gpu=0),
    Case("power-brake", ENGINE, {"fault": "power-brake", "gpu": 1}, "GpuHardwareSlowdown", "warning",
         {"host": ENGINE, "gpu": "1", "clock_event": "hw_power_brake"}, gpu=1),
    Case("exporter-down", "gpu-a100-1", {"fault": "exporter-down"}, "DcgmExporterDown", "warning",
         {"host": "gpu-a100-1", "instance": "gpu-a100-1:9400"}),
    Case("engine-down", GPU, {"fault": "engine-down", "engine": "llama-3.1-8b-instruct"}, "VllmEngineDown",
         "critical", {"host": GPU, "instance": f"{GPU}:8001", "model_name": "llama-3.1-8b-instruct"}),
    Case("engine-stuck", GPU, {"fault": "engine-stuck", "engine": "qwen2.5-7b-instruct"}, "VllmEngineStuck",
         "critical", {"host": GPU, "instance": f"{GPU}:8002", "model_name": "qwen2.5-7b-instruct"}),
    Case("kv-saturation", ENGINE, {"fault": "kv-saturation", "engine": "gemma-2-9b-it"}, "VllmKvCacheSaturated",
         "warning", {"host": ENGINE, "instance": f"{ENGINE}:8000", "model_name": "gemma-2-9b-it"}),
    Case("error-burst", ENGINE, {"fault": "error-burst", "engine": "mistral-7b-instruct"}, "VllmErrorRatioHigh",
         "critical", {"host": ENGINE, "instance": f"{ENGINE}:8001", "model_name": "mistral-7b-instruct"}),
    Case("latency", "gpu-t4-1", {"fault": "latency"}, "VllmInterTokenLatencyBudgetBurn", "critical",
         {"model_name": "phi-3-mini-4k-instruct", "slo": "inter_token_latency"}),
    # Faults between the client and a healthy engine (a proxy answering 503, a stall before the first token):
    # only the endpoint prober sees them, so they page from the outside while the engine's metrics look fine.
    Case("front-503", "gpu-a100-1", {"fault": "front-unavailable", "engine": "llama-3.1-8b-instruct-trt"},
         "EndpointProbeFailing", "critical",
         {"host": "gpu-a100-1", "endpoint": "gpu-a100-1:8001", "model_name": "llama-3.1-8b-instruct-trt"}),
    Case("front-stall", ENGINE, {"fault": "front-stall", "engine": "deepseek-r1-distill-llama-8b", "seconds": 3},
         "EndpointProbeTtftOverSlo", "critical",
         {"host": ENGINE, "endpoint": f"{ENGINE}:30000", "model_name": "deepseek-r1-distill-llama-8b"}),
    # The real llama.cpp server (in gpu-l40s-1's network namespace): its container is stopped, then started.
    Case("llamacpp-stop", ENGINE, {}, LLAMACPP_DOWN_ALERT, "critical",
         {"host": ENGINE, "instance": f"{ENGINE}:{LLAMACPP_PORT}", "job": "llamacpp"}, stop="llamacpp"),
)
# Nobody breaks these: they must stay silent through the whole campaign.
HEALTHY_GPUS = {("gpu-h100-1", "0"): "busy", ("gpu-h100-1", "6"): "idle", ("gpu-t4-1", "0"): "busy"}
HEALTHY_ENGINES = {"gpu-h100-1:8000": "llama-3.1-70b-instruct", "gpu-a100-1:8000": "qwen2.5-32b-instruct"}


@dataclass
class Outcome:
    injected: float = 0.0
    uuid: str | None = None
    fired: float | None = None
    alert: dict[str, Any] | None = None
    cleared: float | None = None
    resolved: float | None = None


@dataclass
class Campaign:
    lab: Any
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0

    def _control(self, host: str) -> str:
        return self.lab.lab.control_url(host)

    def inject(self) -> None:
        self.started = time.time()
        uuids = {host: {g["gpu"]: g["UUID"] for g in self.lab.call(f"{self._control(host)}/sim/state")["gpus"]}
                 for host in {case.host for case in CASES if case.gpu is not None}}
        for case in CASES:
            if case.stop:
                self.lab.lab.stop_engine(case.stop)
            else:
                self.lab.call(f"{self._control(case.host)}/sim/faults", "POST", case.fault)
            self.outcomes[case.id] = Outcome(time.time(), uuids[case.host][case.gpu] if case.gpu is not None else None)

    def _clear(self, case: Case) -> None:
        if case.stop:
            self.lab.lab.start_engine(case.stop)
            self.outcomes[case.id].cleared = time.time()
            return
        filters = {"fault": case.fault["fault"]}
        for key in ("gpu", "engine"):
            if key in case.fault:
                filters[key] = case.fault[key]
        self.lab.call(f"{self._control(case.host)}/sim/faults?{urlencode(filters)}", "DELETE")
        self.outcomes[case.id].cleared = time.time()

    @staticmethod
    def _matches(case: Case, alert: dict[str, Any]) -> bool:
        labels = alert["labels"]
        return (labels.get("alertname") == case.alert and labels.get("severity") == case.severity
                and all(labels.get(key) == value for key, value in case.labels.items()))

    def run(self) -> None:
        """Clear each fault when its alert arrives; wait for every resolved notification."""
        deadline = time.monotonic() + CAMPAIGN_TIMEOUT_S
        while time.monotonic() < deadline:
            notifications = self.lab.notifications(since=self.started)
            for case in CASES:
                outcome = self.outcomes[case.id]
                if outcome.fired is None:
                    for notification in notifications:
                        alert = next((a for a in notification["alerts"]
                                      if a["status"] == "firing" and self._matches(case, a)), None)
                        if alert and notification["received_at"] >= outcome.injected:
                            outcome.fired, outcome.alert = notification["received_at"], alert
                            self._clear(case)
                            break
                elif outcome.resolved is None:
                    for notification in notifications:
                        if notification["received_at"] >= outcome.cleared and any(
                                a["status"] == "resolved" and a["labels"] == outcome.alert["labels"]
                                for a in notification["alerts"]):
                            outcome.resolved = notification["received_at"]
                            break
            if all(o.resolved for o in self.outcomes.values()):
                break
            time.sleep(2)
        self.finished = time.time()
        for case in CASES:  # whatever did not alert is repaired too, for the tests that follow
            if self.outcomes[case.id].cleared is None:
                self._clear(case)


@pytest.fixture(scope="module")
def campaign(lab: Any) -> Campaign:
    started = Campaign(lab)
    started.inject()
    return started


@pytest.fixture(scope="module")
def finished_campaign(campaign: Campaign) -> Campaign:
    campaign.run()
    return campaign


def test_targets_up_and_every_recording_rule_has_data(lab: Any, figure) -> None:
    targets = lab.targets()
    jobs = sorted({t["labels"]["job"] for t in targets})
    assert {"dcgm", "vllm", "node", "prometheus", "alertmanager"} <= set(jobs)
    assert all(t["health"] == "up" for t in targets)
    assert all(t["labels"].get("host") for t in targets), "every target carries the host label"
    assert len([t for t in targets if t["labels"]["job"] == "vllm"]) == 7
    empty = [name for name in sorted(lab.recorded_names()) if not lab.query(name)]
    assert not empty, f"recording rules without data: {empty}"
    figure(f"{len(targets)} targets up ({', '.join(jobs)}); {len(lab.recorded_names())} recorded names with data")


def test_the_real_engine_answers_chat_completions_and_is_scraped(lab: Any) -> None:
    """llama.cpp's own counters move under the load generator's chat completions, as Prometheus scrapes them."""
    selector = f'{{instance="{ENGINE}:{LLAMACPP_PORT}"}}'
    deadline = time.monotonic() + 120
    while not (found := lab.query(f"increase(llamacpp:tokens_predicted_total{selector}[2m]) > 0")):
        assert time.monotonic() < deadline, "llama.cpp generated nothing in 2 minutes of the load generator"
        time.sleep(5)
    assert found[0]["metric"]["host"] == ENGINE
    assert lab.query(f"llamacpp:n_decode_total{selector} > 0")


def test_the_prober_probes_every_endpoint_from_the_outside(lab: Any, figure) -> None:
    """The endpoint prober's streamed chat completions succeed on every endpoint, the real llama.cpp server's
    included: time to first token measured, tokens counted, answers well formed."""
    endpoints = {t["labels"]["instance"] for t in lab.targets()
                 if t["labels"]["job"] in ("vllm", "sglang", "trtllm", "llamacpp")}
    deadline = time.monotonic() + 120
    while {s["metric"]["endpoint"] for s in lab.query("llmobs_probe_success == 1")} != endpoints:
        assert time.monotonic() < deadline, f"probes failing: {lab.query('llmobs_probe_success == 0')}"
        time.sleep(5)
    real = f'{{endpoint="{ENGINE}:{LLAMACPP_PORT}"}}'
    assert lab.query(f"llmobs_probe_answer_well_formed{real} == 1")
    assert lab.query(f"llmobs_probe_http_status{real} == 200")
    tokens = float(lab.query(f"llmobs_probe_tokens_received{real}")[0]["value"][1])
    histogram = "llmobs_probe_time_to_first_token_seconds"
    ttft = lab.query(f"{histogram}_sum{real} / {histogram}_count{real}")
    assert tokens > 0 and ttft and 0 < float(ttft[0]["value"][1]) < 8
    host = lab.query(f"llmobs_probe_success{real}")[0]["metric"]["host"]
    assert host == ENGINE, f"the prober's series carry the engine's host, not the prober's: {host}"
    figure(f"prober: {len(endpoints)} endpoints ok; llama.cpp from the outside: mean TTFT "
           f"{float(ttft[0]['value'][1]) * 1000:.0f} ms, {tokens:.0f} tokens per probe")


def test_gpu_hosts_serve_both_spellings_of_the_hostname_label(lab: Any) -> None:
    """gpu-a100-1 imitates dcgm-exporter 4.5.3-4.8.2 (`Hostname`), the others the pinned 4.6.1-4.8.4 (`hostname`)."""
    hosts = {label: {s["metric"]["host"] for s in lab.query(f'DCGM_FI_DEV_GPU_TEMP{{{label}!=""}}')}
             for label in ("Hostname", "hostname")}
    assert hosts == {"Hostname": {"gpu-a100-1"}, "hostname": {"gpu-h100-1", "gpu-l40s-1", "gpu-t4-1"}}


def _one(lab: Any, expr: str) -> tuple[dict[str, str], float]:
    found = lab.query(expr)
    assert len(found) == 1, f"{expr}: {found}"
    return found[0]["metric"], float(found[0]["value"][1])


def test_genai_metrics_pushed_over_otlp_are_stored_with_their_labels(lab: Any, figure) -> None:
    """The OpenTelemetry SDK's pushes (tests/genai_push.py) reach Prometheus, through its OTLP receiver or the
    lab's OTLP gateway, with the names and labels Prometheus' receiver gives and the llmobs.genai rules read:
    suffixes added, job and instance made of the identifying attributes, resource attributes promoted, the SDK's
    own attributes left out, and the values recorded."""
    if lab.otlp_missing:
        pytest.skip(f"no OTLP in this lab: {lab.otlp_missing}")
    service = f'service_name="{genai_push.SERVICE}"'
    tokens = lab.query(f"gen_ai_client_token_usage_sum{{{service}}}")
    assert {series["metric"]["gen_ai_token_type"] for series in tokens} == {"input", "output"}
    labels = tokens[0]["metric"]
    assert labels["job"] == genai_push.SERVICE and labels["instance"] == f"{genai_push.SERVICE}-1"
    assert labels["service_instance_id"] == f"{genai_push.SERVICE}-1", "identifying attributes are promoted"
    assert labels["gen_ai_request_model"] == genai_push.MODEL and labels["gen_ai_provider_name"] == "openai"
    assert labels["deployment_environment_name"] == genai_push.ENVIRONMENT, "promote_resource_attributes"
    assert not [name for name in labels if name.startswith("telemetry_")], f"on target_info only: {labels}"
    buckets = lab.query(f'gen_ai_client_operation_duration_seconds_bucket{{{service}, error_type=""}}')
    boundaries = {float(series["metric"]["le"]) for series in buckets}
    assert boundaries == {*catalog_mod.load().bucket_families["gen_ai_operation_duration"], float("inf")}
    # Every call records the same values: the sums over the counts give them back exactly.
    per_call = {series["metric"]["gen_ai_token_type"]: float(series["value"][1]) for series in lab.query(
        f"gen_ai_client_token_usage_sum{{{service}}} / gen_ai_client_token_usage_count{{{service}}}")}
    assert per_call == {"input": genai_push.INPUT_TOKENS, "output": genai_push.OUTPUT_TOKENS}
    duration = "gen_ai_client_operation_duration_seconds"
    durations = {series["metric"].get("error_type", ""): float(series["value"][1]) for series in lab.query(
        f"{duration}_sum{{{service}}} / {duration}_count{{{service}}}")}
    assert durations == {"": genai_push.DURATION_S, "timeout": genai_push.FAILED_DURATION_S}
    _, calls = _one(lab, f'sum({duration}_count{{{service}}})')
    path = "Prometheus' OTLP receiver" if lab.otlp_endpoint.endswith(OTLP_METRICS_PATH) else "the OTLP gateway"
    figure(f"OTLP through {path}: {len(tokens)} token series, {len(buckets)} duration buckets of"
           f" {genai_push.SERVICE}, {calls:.0f} calls stored, {per_call['input']:.0f}/{per_call['output']:.0f}"
           f" tokens and {durations['']:.2f} s ({durations['timeout']:.2f} s failed) per call")


def test_genai_rules_summarise_the_application_per_model(lab: Any, figure) -> None:
    """Tokens/s, call rate, failures, duration percentiles and cost of the pushing application, per model."""
    if lab.otlp_missing:
        pytest.skip(f"no OTLP in this lab: {lab.otlp_missing}")
    app = f'service_name="{genai_push.SERVICE}", model_name="{genai_push.MODEL}"'
    _, output = _one(lab, f'service_model:gen_ai_client_token_usage:rate5m{{{app}, gen_ai_token_type="output"}}')
    operations = f"service_model:gen_ai_client_operations:rate5m{{{app}}}"
    _, calls = _one(lab, operations)
    _, evaluated = _one(lab, f"timestamp({operations})")
    _, failed = _one(lab, f"service_model:gen_ai_client_operation_errors:ratio_rate5m{{{app}}}")
    # About one call a second, each receiving 50 tokens; one in ten fails. rate() over 5 minutes divides by the
    # whole window, which the application may not have filled yet: what it made in the window the rule evaluated,
    # over 300 s; the calls of its last export interval may not have arrived by then.
    made = lab.application.calls_between(evaluated - 300, evaluated) / 300
    pushed = lab.application.calls_between(evaluated - 300, evaluated - genai_push.EXPORT_INTERVAL_MS / 1000) / 300
    assert 0.9 * pushed < calls <= 1.05 * made, f"{calls:.3f} calls/s recorded, {made:.3f} made"
    assert output / calls == pytest.approx(genai_push.OUTPUT_TOKENS, rel=0.05)
    assert 0.05 < failed < 0.15
    quantile = "service_model:gen_ai_client_operation_duration_seconds:histogram_quantile5m"
    _, p50 = _one(lab, f'{quantile}{{{app}, quantile="0.5"}}')
    _, p99 = _one(lab, f'{quantile}{{{app}, quantile="0.99"}}')
    assert 0.32 < p50 <= 0.64, "the 0.5 s calls are in the (0.32, 0.64] bucket"
    assert 2.56 < p99 <= 5.12, "the failed 3 s calls are in the (2.56, 5.12] bucket"
    cost_series = f"service_model:gen_ai_client_cost:usd_per_hour{{{app}}}"
    _, cost = _one(lab, cost_series)
    _, costed = _one(lab, f"timestamp({cost_series})")
    # The rule's inputs as it read them at its last evaluation: a young lab's rates move within 15 s.
    output_then, per_million = (float(lab.query(expr, at=costed)[0]["value"][1]) for expr in (
        f'service_model:gen_ai_client_token_usage:rate5m{{{app}, gen_ai_token_type="output"}}',
        f'model:llmobs_cost:usd_per_million_tokens{{model_name="{genai_push.MODEL}"}}'))
    assert cost == pytest.approx(output_then * 3600 / 1e6 * per_million, rel=0.01)
    figure(f"GenAI rules: {output:.1f} output tokens/s, {calls:.3f} calls/s ({made:.3f} made), {failed:.1%} failed,"
           f" P50 {p50:.2f}s, P99 {p99:.2f}s, {cost:.4f} USD/h at {per_million:.3f} USD per million tokens")


def test_valid_configuration_is_validated_then_reloaded(lab: Any) -> None:
    """Before the campaign: a reload re-creates the rule groups, and an alert that starts firing at that
    moment is only re-sent after Prometheus' resend delay (1 minute), which would skew the timings."""
    runtime = f"{lab.url('prometheus')}/api/v1/status/runtimeinfo"
    before = lab.call(runtime)["data"]["lastConfigTime"]
    time.sleep(1)  # lastConfigTime has a resolution of a second
    for service in ("prometheus", "alertmanager"):
        assert "SUCCESS" in lab.lab.apply(service, {})
    after = lab.call(runtime)["data"]
    assert after["reloadConfigSuccess"] and after["lastConfigTime"] != before, "Prometheus did not reload"
    assert lab.call(f"{lab.url('alertmanager')}/api/v2/status")["config"]["original"]


def test_invalid_configuration_is_refused_and_the_running_one_stays(lab: Any, campaign: Campaign) -> None:
    """Runs while the fault campaign is under way (it was just injected): a refusal disturbs nothing."""
    prometheus, alertmanager = lab.url("prometheus"), lab.url("alertmanager")
    live = lab.config_root / "prometheus" / "prometheus.yml"
    before_text = live.read_text()
    before_config = lab.call(f"{prometheus}/api/v1/status/config")["data"]["yaml"]
    before_targets = {(t["labels"]["job"], t["labels"]["instance"]) for t in lab.targets()}
    config = yaml.safe_load(before_text)
    config["global"]["scrape_interval"] = "fast"
    with pytest.raises(ConfigError, match="promtool rejected"):
        lab.lab.apply("prometheus", {"prometheus.yml": yaml.safe_dump(config)})
    # Not PromQL on any version (Prometheus 3 accepts any UTF-8 record name, so a bad name no longer is).
    broken_rule = "groups:\n- name: broken\n  rules:\n  - record: broken:up:sum\n    expr: sum(up\n"
    with pytest.raises(ConfigError, match="promtool rejected"):
        lab.lab.apply("prometheus", {"rules/broken.yml": broken_rule})
    assert live.read_text() == before_text and not (live.parent / "rules" / "broken.yml").exists()
    assert lab.call(f"{prometheus}/api/v1/status/config")["data"]["yaml"] == before_config
    assert lab.query("prometheus_config_last_reload_successful")[0]["value"][1] == "1"
    am_live = lab.config_root / "alertmanager" / "alertmanager.yml"
    am_before = am_live.read_text()
    am_config = yaml.safe_load(am_before)
    am_config["route"]["receiver"] = "nobody-by-that-name"
    with pytest.raises(ConfigError, match="amtool rejected"):
        lab.lab.apply("alertmanager", {"alertmanager.yml": yaml.safe_dump(am_config)})
    assert am_live.read_text() == am_before
    assert lab.call(f"{alertmanager}/api/v2/status")["config"]["original"].count("nobody-by-that-name") == 0
    # Still scraping what it scraped (some targets are down on purpose: the fault campaign runs).
    assert {(t["labels"]["job"], t["labels"]["instance"]) for t in lab.targets()} == before_targets


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_fault_is_notified_with_its_labels_and_resolved(finished_campaign: Campaign, case: Case) -> None:
    outcome = finished_campaign.outcomes[case.id]
    assert outcome.fired, f"no {case.severity} {case.alert} with {case.labels} within {CAMPAIGN_TIMEOUT_S} s"
    labels = outcome.alert["labels"]
    if case.gpu is not None:
        assert labels["UUID"] == outcome.uuid and labels.get("modelName"), labels
    assert labels.get("host") or case.alert.endswith("BudgetBurn"), labels   # SLOs are per model
    assert outcome.alert["annotations"].get("runbook_url") and outcome.alert["annotations"].get("description")
    # The source link names Prometheus' external URL (compose default: localhost), not its container's id.
    source = urlsplit(outcome.alert["generatorURL"])
    assert (source.hostname, source.path) == ("localhost", "/graph"), outcome.alert["generatorURL"]
    assert outcome.resolved, f"{case.alert} fired but its resolved notification never came after the repair"


def test_print_fault_to_notification_times(finished_campaign: Campaign, figure) -> None:
    rows = []
    for case in CASES:
        o = finished_campaign.outcomes[case.id]
        notified = f"{o.fired - o.injected:6.1f}" if o.fired else "  none"
        resolved = f"{o.resolved - o.cleared:6.1f}" if o.resolved and o.cleared else "  none"
        rows.append(f"  {case.id:<18} {case.alert + ' (' + case.severity + ')':<46} {notified} s {resolved} s")
    figure("\n  fault              alert (severity)                                "
           "inject->notify  repair->resolved\n" + "\n".join(rows)
           + f"\n  campaign: {finished_campaign.finished - finished_campaign.started:.0f} s")
    assert all(finished_campaign.outcomes[c.id].fired for c in CASES)


def test_faults_in_front_of_the_engine_page_only_from_the_outside(lab: Any, finished_campaign: Campaign) -> None:
    """While a proxy answered 503 or stalled in front of them, the two engines raised no alert of their own
    that was not already there before the faults, and they kept serving: only the prober's alerts saw them."""
    models = [case.labels["model_name"] for case in CASES if case.id.startswith("front-")]
    selector = f'severity=~"warning|critical", model_name=~"{"|".join(models)}", alertname!~"EndpointProbe.*"'

    def alert(series: dict[str, Any]) -> tuple[str, str, str]:
        return series["metric"]["alertname"], series["metric"]["model_name"], series["metric"]["severity"]

    before = {alert(s) for s in lab.query(f"ALERTS{{{selector}}}", at=finished_campaign.started)}
    fired = {alert(s) for s in lab.query_range(f"ALERTS{{{selector}}}", finished_campaign.started, time.time())}
    assert not fired - before, f"engine alerts for faults in front of the engine: {sorted(fired - before)}"
    for model in models:
        served = lab.query(f'sum(instance_model:engine_requests:rate5m{{model_name="{model}"}}) > 0')
        assert served, f"{model}'s own metrics show no traffic"


def _excused(labels: dict[str, str]) -> bool:
    if "endpoint" in labels:  # the prober's alerts: an endpoint is the engine instance its clients call
        labels = {**labels, "instance": labels["endpoint"]}
    return any(all(labels.get(key) == value for key, value in case.scope.items()) for case in CASES) or (
        labels.get("model_name") in {case.labels.get("model_name") for case in CASES} - {None})


def test_healthy_targets_stayed_silent(lab: Any, finished_campaign: Campaign) -> None:
    """From the moment the lab was ready to the end of the campaign, no warning or critical alert (firing
    or pending) concerns anything that was not broken on purpose."""
    start, end = lab.ready_at, time.time()
    alerts = lab.query_range('ALERTS{severity=~"warning|critical"}', start, end)
    unexpected = sorted({str({k: v for k, v in a["metric"].items() if k != "__name__"})
                         for a in alerts if not _excused(a["metric"])})
    assert not unexpected, "alerts about healthy targets:\n" + "\n".join(unexpected)
    notified = [a["labels"] for n in lab.notifications(since=start) for a in n["alerts"]
                if a["labels"].get("severity") in ("warning", "critical") and not _excused(a["labels"])]
    assert not notified, f"notifications about healthy targets: {notified}"
    # The healthy GPUs were what they claim to be: busy (and near their power limit) or idle.
    for (host, gpu), state in HEALTHY_GPUS.items():
        selector = f'{{host="{host}",gpu="{gpu}"}}'
        util = float(lab.query(f"avg_over_time(DCGM_FI_DEV_GPU_UTIL{selector}[5m])")[0]["value"][1])
        fb = float(lab.query(f"avg_over_time(host_gpu:dcgm_fb_used:ratio{selector}[5m])")[0]["value"][1])
        power = float(lab.query(f"max_over_time(host_gpu:dcgm_power_usage:ratio_limit{selector}[5m])")[0]["value"][1])
        if state == "busy":
            assert util > 90 and fb > 0.85 and power > 0.75, (host, gpu, util, fb, power)
        else:
            assert util == 0 and fb < 0.01, (host, gpu, util, fb)
    for instance, model in HEALTHY_ENGINES.items():
        rate = lab.query(f'instance_model:vllm_requests:rate5m{{instance="{instance}",model_name="{model}"}}')
        assert float(rate[0]["value"][1]) > 1, f"{model} on {instance} served no traffic"


def test_down_then_up_keeps_prometheus_data_and_alertmanager_silences(lab: Any,
                                                                         finished_campaign: Campaign) -> None:
    now = time.time()
    silence = {"matchers": [{"name": "alertname", "value": "LabPersistenceProbe", "isRegex": False}],
               "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
               "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
               "createdBy": "tests/lab", "comment": "survives down and up"}
    silence_id = lab.call(f"{lab.url('alertmanager')}/api/v2/silences", "POST", silence)["silenceID"]
    before = lab.query('count_over_time(up{job="prometheus"}[1h])')[0]["value"][1]
    lab.lab.down()
    lab.lab.up()
    lab.wait_ready()
    try:
        kept = lab.call(f"{lab.url('alertmanager')}/api/v2/silence/{silence_id}")
    except HTTPError as error:
        pytest.fail(f"the silence is gone after down/up: {error}")
    assert kept["status"]["state"] == "active" and kept["comment"] == "survives down and up"
    samples = lab.query('count_over_time(up{job="prometheus"}[1h])')[0]["value"][1]
    assert int(samples) > int(before), "Prometheus lost its samples from before the restart"
    assert lab.query("up", at=now - 60), "no data from before the restart"
