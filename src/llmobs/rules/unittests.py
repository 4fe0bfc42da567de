"""promtool unit tests of the generated rules (prometheus/tests/*.test.yml), rendered for the settings.

The input series look like what dcgm-exporter, vLLM and node_exporter really expose (names, labels,
the GPU's own limits from catalog/gpus.yaml, vLLM's bucket labels). Every fault scenario starts from a
healthy, busy host and changes what the fault changes; inputs are derived from the settings' thresholds
and SLO targets, so a site can run the tests against its own rules. The expected labels and annotations
are written out here, independently of the rule templates, so a wrong template fails a test.

Files: quiet (healthy-busy and idle hosts raise nothing but the Watchdog), gpu, engine, slo, host (host
and pipeline alerts), recording (values of the recording rules the dashboards and alerts read).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from llmobs import catalog as catalog_mod
from llmobs.catalog import Catalog, duration_seconds
from llmobs.conventions import ENGINE_GPU_INFO
from llmobs.rules import slo as slo_rules
from llmobs.rules.alerts import runbook_url
from llmobs.settings import Settings
from llmobs.yamlfmt import dump, generated_header

# The rule files under test, relative to prometheus/tests/. inventory.yml is left out: the tests give
# llmobs:engine_gpu:info as input, independent of the site's inventory. Tests of other alerts leave the
# SLO rules out too (they cost 40 % of the evaluation and those alerts cannot fire without them).
RULE_FILES = ("../rules/recording.yml", "../rules/slo.yml", "../rules/alerts.yml")
NO_SLO_RULES = ("../rules/recording.yml", "../rules/alerts.yml")
_HEADER = generated_header("src/llmobs/rules/unittests.py and the settings") + (
    "# Run: promtool test rules prometheus/tests/*.test.yml\n"
)
DRIVER = "570.133.20"
WINDOW = "300000"  # dcgm-exporter's default XID and clock-events window, ms


STALE = "stale"  # a staleness marker: the scrape no longer has the series
Sample = float | str | None  # a value, STALE, or None for no sample


def number(value: float) -> str:
    """A sample value as promtool reads it (no exponent, so `a+bxn` stays unambiguous)."""
    value = round(value, 9)
    if value == int(value):
        return str(int(value))
    return format(value, ".9f").rstrip("0")


def seconds(duration: str) -> float:
    """Seconds in a Prometheus duration, compound ones included (`2m10s`)."""
    return sum(duration_seconds(part) for part in re.findall(r"[0-9]+[a-z]+", duration))


def percent(value: float) -> str:
    """What Prometheus' humanizePercentage prints."""
    return f"{value * 100:.4g}%"


def notation(samples: list[Sample]) -> str:
    """promtool's expanding notation: `a+bxn` for runs with a constant step, `_xn` for gaps."""
    parts, i = [], 0
    while i < len(samples):
        sample = samples[i]
        if sample is None or sample == STALE:
            j = i
            while j < len(samples) and samples[j] == sample:
                j += 1
            token = "_" if sample is None else STALE
            parts += [f"_x{j - i}"] if sample is None and j - i > 1 else [token] * (j - i)
            i = j
            continue
        j = i + 1
        step = None
        while j < len(samples) and isinstance(samples[j], float | int) and not isinstance(samples[j], bool):
            delta = round(samples[j] - samples[j - 1], 9)
            if step is not None and delta != step:
                break
            step = delta
            j += 1
        count = j - i - 1
        if count == 0:
            parts.append(number(sample))
        elif step == 0:
            parts.append(f"{number(sample)}x{count}")
        else:
            parts.append(f"{number(sample)}{'+' if step > 0 else '-'}{number(abs(step))}x{count}")
        i = j
    return " ".join(parts)


@dataclass(frozen=True)
class Timeline:
    """Sample lists of `steps` samples, one every `interval` seconds, starting at 0."""

    interval: int
    steps: int

    def at(self, seconds: float) -> int:
        return int(seconds // self.interval)

    def flat(self, value: float) -> list[Sample]:
        return [value] * self.steps

    def change(self, before: float, after: float, at: int) -> list[Sample]:
        return [before] * at + [after] * (self.steps - at)

    def ramp(self, inc: float, start: float = 0) -> list[Sample]:
        return [start + inc * i for i in range(self.steps)]

    def ramp_change(self, inc: float, new_inc: float, at: int, start: float = 0) -> list[Sample]:
        pivot = start + inc * (at - 1)
        return [start + inc * i for i in range(at)] + [pivot + new_inc * (i - at + 1) for i in range(at, self.steps)]

    def appears(self, value: float, at: int) -> list[Sample]:
        return [None] * at + [value] * (self.steps - at)


@dataclass
class Series:
    name: str
    labels: dict[str, str]
    samples: list[Sample]

    def stop(self, at: int) -> None:
        """The series disappears from the scrape at sample `at` (a staleness marker, then nothing)."""
        self.samples = [*self.samples[:at], STALE]

    def gap(self, at: int) -> None:
        """One scrape without the series (an exporter restart), then it is back."""
        self.samples = [*self.samples[:at], STALE, *self.samples[at + 1:]]

    def as_input(self) -> dict[str, str]:
        labels = ", ".join(f'{k}="{v}"' for k, v in self.labels.items())
        return {"series": f"{self.name}{{{labels}}}", "values": notation(self.samples)}


@dataclass
class Gpu:
    host: str
    index: int
    model: str  # key of catalog/gpus.yaml
    model_name: str
    uuid: str

    def ref(self) -> str:
        return f"GPU {self.index} ({self.uuid}, {self.model_name}) on {self.host}"


@dataclass
class Engine:
    host: str
    model_name: str
    port: int = 8000

    @property
    def instance(self) -> str:
        return f"{self.host}:{self.port}"

    def ref(self) -> str:
        return f"{self.model_name} on {self.instance} ({self.host})"


@dataclass
class Scenario:
    """One promtool test: input series, and the alerts expected at given times."""

    name: str
    timeline: Timeline
    series: list[Series] = field(default_factory=list)
    alert_tests: list[dict[str, Any]] = field(default_factory=list)
    expr_tests: list[dict[str, Any]] = field(default_factory=list)

    def find(self, name: str, **labels: str) -> Series:
        for s in self.series:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s
        raise KeyError(f"{self.name}: no input series {name}{labels}")

    def set(self, name: str, samples: list[Sample], **labels: str) -> None:
        self.find(name, **labels).samples = samples

    def where(self, predicate: Any) -> list[Series]:
        return [s for s in self.series if predicate(s)]

    def expect_value(self, expr: str, eval_time: str, labels: dict[str, str], value: float) -> None:
        """`expr` has one series with `labels` and `value`, to 4 decimals (rates carry float noise)."""
        rendered = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        self.expr_tests.append({"expr": f"round({expr}, 0.0001)", "eval_time": eval_time,
                                "exp_samples": [{"labels": f"{{{rendered}}}", "value": round(value, 4)}]})

    def drop(self, name: str, **labels: str) -> None:
        self.series.remove(self.find(name, **labels))

    def render(self) -> dict[str, Any]:
        # promtool evaluates every rule up to the latest eval_time: samples beyond it are dead weight.
        last = max(seconds(t["eval_time"]) for t in [*self.alert_tests, *self.expr_tests])
        keep = self.timeline.at(last) + 2
        test: dict[str, Any] = {
            "name": self.name, "interval": f"{self.timeline.interval}s",
            "input_series": [Series(s.name, s.labels, s.samples[:keep]).as_input() for s in self.series],
        }
        if self.alert_tests:
            test["alert_rule_test"] = self.alert_tests
        if self.expr_tests:
            test["promql_expr_test"] = self.expr_tests
        return test


class Builder:
    """Input series and expected alerts for the settings."""

    def __init__(self, settings: Settings, catalog: Catalog):
        from llmobs.rules import alert_list

        self.settings, self.catalog = settings, catalog
        self.all_alerts = sorted({a.alert for a in alert_list(settings, catalog)})
        self.host = settings.labels.host
        self.jobs = settings.jobs
        self.t = settings.thresholds

    # ------------------------------------------------------------------ expectations
    def expect(self, alert: str, severity: str, labels: dict[str, str], summary: str,
               description: str) -> dict[str, Any]:
        component = self.catalog.component_of(alert)
        return {
            "exp_labels": {**labels, "severity": severity, "component": component,
                           "team": self.settings.alerting.teams[component]},
            "exp_annotations": {"summary": summary, "description": description,
                                "runbook_url": runbook_url(self.settings, self.catalog.page_of(alert), alert)},
        }

    @staticmethod
    def at(eval_time: str, alert: str, *expected: dict[str, Any]) -> dict[str, Any]:
        return {"eval_time": eval_time, "alertname": alert, "exp_alerts": list(expected)}

    def gpu_labels(self, gpu: Gpu) -> dict[str, str]:
        return {self.host: gpu.host, "gpu": str(gpu.index), "UUID": gpu.uuid, "modelName": gpu.model_name}

    def engine_labels(self, engine: Engine) -> dict[str, str]:
        return {self.host: engine.host, "instance": engine.instance, "model_name": engine.model_name}

    # ------------------------------------------------------------------ GPUs (dcgm-exporter)
    def gpu(self, host: str, index: int, model: str = "H100-SXM") -> Gpu:
        return Gpu(host, index, model, self.catalog.gpu_models[model].model_name,
                   f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{host}/{index}')}")

    def dcgm_host(self, tl: Timeline, host: str, gpus: list[Gpu], busy: bool = True) -> list[Series]:
        """A host's dcgm-exporter: its target and, per GPU, the fields the rules read."""
        series = [Series("up", {"job": self.jobs.dcgm, "instance": f"{host}:9400", self.host: host}, tl.flat(1))]
        for gpu in gpus:
            series += self.dcgm_gpu(tl, gpu, busy)
        return series

    def dcgm_gpu(self, tl: Timeline, gpu: Gpu, busy: bool) -> list[Series]:
        spec = self.catalog.gpu_models[gpu.model]
        labels = {"gpu": str(gpu.index), "UUID": gpu.uuid, "pci_bus_id": f"00000000:{0x18 + 16 * gpu.index:02X}:00.0",
                  "device": f"nvidia{gpu.index}", "modelName": gpu.model_name, "Hostname": gpu.host,
                  "DCGM_FI_DRIVER_VERSION": DRIVER, "instance": f"{gpu.host}:9400", "job": self.jobs.dcgm,
                  self.host: gpu.host}
        margin = 15 if busy else spec.slowdown_temp_celsius - spec.idle_temp_celsius
        power = round(spec.power_limit_watts * 0.97) if busy else spec.idle_power_watts
        memory = spec.memory_mib
        # Under load the power limiter holds the draw near the limit, with short overshoots.
        power_values = tl.flat(power)
        if busy:
            power_values[tl.steps // 4: tl.steps // 4 + 2] = [spec.power_limit_watts * 1.02] * 2

        def s(name: str, values: list[Sample], **extra: str) -> Series:
            return Series(name, {**labels, **extra}, values)

        return [
            s("DCGM_FI_DEV_GPU_TEMP", tl.flat(spec.slowdown_temp_celsius - margin)),
            s("DCGM_FI_DEV_SLOWDOWN_TEMP", tl.flat(spec.slowdown_temp_celsius)),
            s("DCGM_FI_DEV_GPU_TEMP_LIMIT", tl.flat(margin)),
            s("DCGM_FI_DEV_POWER_USAGE", power_values),
            s("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", tl.flat(spec.power_limit_watts)),
            s("DCGM_FI_DEV_POWER_MGMT_LIMIT", tl.flat(spec.power_limit_watts)),
            s("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", tl.ramp(power * 1000 * tl.interval, 5e9)),
            s("DCGM_FI_DEV_GPU_UTIL", tl.flat(100 if busy else 0)),
            # vLLM preallocates ~90 % of the framebuffer, busy or idle.
            s("DCGM_FI_DEV_FB_USED", tl.flat(round(memory * 0.9))),
            s("DCGM_FI_DEV_FB_FREE", tl.flat(memory - round(memory * 0.9) - 512)),
            s("DCGM_FI_DEV_FB_RESERVED", tl.flat(512)),
            s("DCGM_FI_DEV_THERMAL_VIOLATION", tl.flat(0)),
            s("DCGM_FI_DEV_POWER_VIOLATION", tl.ramp(0.4e9 * tl.interval if busy else 0)),
            s("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", tl.flat(0)),
            s("DCGM_FI_DEV_ROW_REMAP_FAILURE", tl.flat(0)),
            s("DCGM_FI_DEV_ROW_REMAP_PENDING", tl.flat(0)),
            s("DCGM_FI_DEV_RETIRED_PENDING", tl.flat(0)),
            s("DCGM_EXP_XID_ERRORS_COUNT", tl.flat(0), window_size_in_ms=WINDOW),
            # Power capping (busy) or idle clocks (idle): normal clocks events, never alerts.
            s("DCGM_EXP_CLOCK_EVENTS_COUNT", tl.flat(40 if busy else 60),
              clock_event="power_cap" if busy else "gpu_idle", window_size_in_ms=WINDOW),
        ]

    # ------------------------------------------------------------------ hosts (node_exporter)
    def node_host(self, tl: Timeline, host: str) -> list[Series]:
        base = {"instance": f"{host}:9100", "job": self.jobs.node, self.host: host}
        series = [Series("up", base, tl.flat(1))]
        # Watched volumes at 40 % free; a nearly full tmpfs and an unwatched /boot must not alert.
        volumes = [(m, "ext4", f"/dev/nvme0n1p{i + 2}", 0.4) for i, m in enumerate(self.t.disk_mountpoints)]
        volumes += [("/run", "tmpfs", "tmpfs", 0.01), ("/boot", "ext4", "/dev/nvme0n1p1", 0.02)]
        for mountpoint, fstype, device, free in volumes:
            labels = {**base, "mountpoint": mountpoint, "fstype": fstype, "device": device}
            series += [
                Series("node_filesystem_size_bytes", labels, tl.flat(1e12)),
                Series("node_filesystem_avail_bytes", labels, tl.flat(1e12 * free)),
                Series("node_filesystem_readonly", labels, tl.flat(0)),
            ]
        return series

    # ------------------------------------------------------------------ engines (vLLM)
    def vllm_engine(self, tl: Timeline, engine: Engine, busy: bool = True, old_names: bool = False,
                    bad_share: dict[str, float] | None = None) -> list[Series]:
        """A vLLM server's /metrics; busy: 10 requests/s. `bad_share` (SLO name: share) sets the share of
        failed requests or slow events; by default 0.3 of each SLO's error budget."""
        labels = {"model_name": engine.model_name, "engine": "0", "instance": engine.instance,
                  "job": self.jobs.vllm, self.host: engine.host}
        targets = self.settings.slo.targets_for(engine.model_name)
        shares = {s.name: 0.3 * float(slo_rules.error_budget(s, targets)) for s in self.catalog.slos.slos}
        shares.update(bad_share or {})
        per_step = tl.interval if busy else 0
        requests = 10 * per_step  # 10 requests/s when busy

        def s(name: str, values: list[Sample], **extra: str) -> Series:
            return Series(name, {**labels, **extra}, values)

        errors = requests * shares["availability"]
        series = [
            Series("up", {"instance": engine.instance, "job": self.jobs.vllm, self.host: engine.host}, tl.flat(1)),
            s("vllm:num_requests_running", tl.flat(48 if busy else 0)),
            s("vllm:num_requests_waiting", tl.flat(2 if busy else 0)),
            s("vllm:gpu_cache_usage_perc" if old_names else "vllm:kv_cache_usage_perc", tl.flat(0.82 if busy else 0)),
            s("vllm:num_preemptions_total", tl.ramp(0.01 * per_step)),
            s("vllm:prompt_tokens_total", tl.ramp(8000 * per_step)),
            s("vllm:generation_tokens_total", tl.ramp(3000 * per_step)),
            s("vllm:prefix_cache_queries_total", tl.ramp(8000 * per_step)),
            s("vllm:prefix_cache_hits_total", tl.ramp(4000 * per_step)),
            s("vllm:request_success_total", tl.ramp(requests * 0.95 - errors), finished_reason="stop"),
            s("vllm:request_success_total", tl.ramp(requests * 0.045), finished_reason="length"),
            s("vllm:request_success_total", tl.ramp(requests * 0.005), finished_reason="abort"),
            s("vllm:request_success_total", tl.ramp(errors), finished_reason="error"),
        ]
        for spec in self.catalog.slos.slos:
            if not spec.latency:
                continue
            name = spec.latency.histograms[-1 if old_names else 0]
            events = requests * (300 if spec.name != "ttft" else 1)  # ~30 output tokens per request
            threshold = str(float(getattr(targets, spec.latency.threshold)))
            series += [
                s(f"{name}_bucket", tl.ramp(events * (1 - shares[spec.name])), le=threshold),
                s(f"{name}_bucket", tl.ramp(events), le="+Inf"),
            ]
        return series

    def engine_gpu_info(self, tl: Timeline, engine: Engine, gpus: list[Gpu]) -> list[Series]:
        return [Series(ENGINE_GPU_INFO, {**self.engine_labels(engine), "gpu": str(g.index)}, tl.flat(1))
                for g in gpus]

    # ------------------------------------------------------------------ the monitoring stack
    def pipeline(self, tl: Timeline, host: str = "monitor-1") -> list[Series]:
        prometheus = {"instance": "prometheus:9090", "job": self.jobs.prometheus, self.host: host}
        alertmanager = {"instance": "alertmanager:9093", "job": self.jobs.alertmanager, self.host: host}
        return [
            Series("up", prometheus, tl.flat(1)),
            Series("up", alertmanager, tl.flat(1)),
            Series("up", {"instance": "grafana:3000", "job": self.jobs.grafana, self.host: host}, tl.flat(1)),
            Series("prometheus_rule_evaluation_failures_total",
                   {**prometheus, "rule_group": "/etc/prometheus/rules/alerts.yml;llmobs.alerts.gpu-xid"}, tl.flat(0)),
            Series("prometheus_config_last_reload_successful", prometheus, tl.flat(1)),
            Series("alertmanager_notifications_total", {**alertmanager, "integration": "webhook"}, tl.ramp(1)),
            Series("alertmanager_notifications_failed_total", {**alertmanager, "integration": "webhook"}, tl.flat(0)),
        ]

    def busy_host(self, tl: Timeline, host: str, gpus: int = 2, model: str = "H100-SXM",
                  model_name: str = "test-model", busy: bool = True,
                  parts: tuple[str, ...] = ("node", "dcgm", "vllm")) -> tuple[list[Series], list[Gpu], Engine]:
        """A GPU server: node_exporter, dcgm-exporter and one vLLM engine on all its GPUs (the `parts` a
        test needs: promtool's time grows with the series)."""
        gpu_list = [self.gpu(host, i, model) for i in range(gpus)]
        engine = Engine(host, model_name)
        series = self.node_host(tl, host) if "node" in parts else []
        if "dcgm" in parts:
            series += self.dcgm_host(tl, host, gpu_list, busy)
        if "vllm" in parts:
            series += self.vllm_engine(tl, engine, busy) + self.engine_gpu_info(tl, engine, gpu_list)
        return series, gpu_list, engine

    def default_model(self) -> str:
        """A model name without its own SLO targets."""
        name = "test-model"
        while name in self.settings.slo.models:
            name += "-x"
        return name


# ====================================================================================== scenarios
def quiet(b: Builder) -> list[Scenario]:
    """Healthy-busy and idle fleets over 2 hours: nothing fires but the Watchdog."""
    tl = Timeline(60, 121)
    scenario = Scenario("healthy busy and idle hosts raise no alert", tl)
    model = b.default_model()
    series, _, _ = b.busy_host(tl, "busy-h100", 8, "H100-SXM", model)
    scenario.series += series
    series, _, _ = b.busy_host(tl, "busy-l40s", 4, "L40S", model)
    scenario.series += series
    series, _, _ = b.busy_host(tl, "idle-a100", 4, "A100-SXM", model, busy=False)
    scenario.series += series
    # A T4 at 85 °C is healthy (its slowdown threshold is 93 °C): no fixed degree value.
    t4 = b.gpu("busy-t4", 0, "T4")
    scenario.series += b.node_host(tl, "busy-t4") + b.dcgm_host(tl, "busy-t4", [t4])
    scenario.set("DCGM_FI_DEV_GPU_TEMP", tl.flat(85), UUID=t4.uuid)
    scenario.set("DCGM_FI_DEV_GPU_TEMP_LIMIT", tl.flat(8), UUID=t4.uuid)
    # An engine on pre-0.11 vLLM (old metric names), and one per model with its own SLO targets.
    scenario.series += b.vllm_engine(tl, Engine("busy-t4", model), old_names=True)
    for index, name in enumerate(sorted(b.settings.slo.models)):
        scenario.series += b.vllm_engine(tl, Engine("busy-h100", name, 8001 + index))
    scenario.series += b.pipeline(tl)
    watchdog = b.expect("Watchdog", "info", {}, "Alerting pipeline heartbeat",
                        "This alert always fires. It goes to a dead man's switch, which raises an alarm when the "
                        "notifications stop.")
    for eval_time in ("5m", "30m", "1h", "2h"):
        for alert in b.all_alerts:
            scenario.alert_tests.append(b.at(eval_time, alert, *([watchdog] if alert == "Watchdog" else [])))
    return [scenario]


def gpu_faults(b: Builder) -> list[Scenario]:
    tl = Timeline(10, 121)
    inject = tl.at(120)  # faults start at 2m
    scenarios = []

    def fault(name: str) -> tuple[Scenario, list[Gpu]]:
        scenario = Scenario(name, tl)
        series, gpus, _ = b.busy_host(tl, "gpu-node-1", 2, "H100-SXM", b.default_model(), parts=("dcgm",))
        scenario.series += series
        return scenario, gpus

    xids = b.catalog.xids
    for code, alert, severity, label in ((79, "GpuXidFatal", "critical", "fatal"),
                                         (160, "GpuXidFatal", "critical", "fatal"),
                                         (151, "GpuXidFatal", "critical", "fatal"),
                                         (13, "GpuXidApplication", "warning", "application"),
                                         (154, "GpuXidRecoveryActionChanged", "warning", "recovery_action"),
                                         (54, "GpuXidNeedsInvestigation", "warning", "investigate"),
                                         (63, "GpuXidInformational", "info", "informational")):
        scenario, gpus = fault(f"XID {code} ({label}) on GPU 1")
        gpu, xid = gpus[1], xids.codes[code]
        scenario.find("DCGM_EXP_XID_ERRORS_COUNT", UUID=gpu.uuid).stop(inject)
        scenario.series.append(Series("DCGM_EXP_XID_ERRORS_COUNT", {
            **scenario.find("DCGM_EXP_XID_ERRORS_COUNT", UUID=gpu.uuid).labels, "xid": str(code)},
            tl.appears(1, inject)))
        action = xids.actions[xid.action]
        tail = {"fatal": f". NVIDIA classes it fatal: {action}.",
                "recovery_action": ": the driver changed the recovery action the GPU needs, which may now be a"
                                   f" reset or a reboot. Recovery action: {action}.",
                "application": f". The process using the GPU failed; the GPU is healthy: {action}.",
                "investigate": f". NVIDIA asks for a person, not an automatic reset: {action}.",
                "informational": f": a record, {action}."}[label]
        summary = {"recovery_action": f"Recovery action changed on GPU {gpu.index} of {gpu.host} (XID {code})",
                   "investigate": f"XID {code} to investigate on GPU {gpu.index} of {gpu.host}"}.get(
            label, f"{label.capitalize()} XID {code} on GPU {gpu.index} of {gpu.host}")
        expected = b.expect(
            alert, severity,
            {**b.gpu_labels(gpu), "xid": str(code), "xid_name": xid.name, "xid_action": action}, summary,
            f"{gpu.ref()} reported XID {code} ({xid.name}) 1 time(s) in the exporter's XID window{tail}",
        )
        scenario.alert_tests += [b.at("1m50s", alert), b.at("2m10s", alert, expected)]
        scenarios.append(scenario)

    scenario, gpus = fault("XID 173 (past NVIDIA's catalogue) on GPU 0")
    gpu = gpus[0]
    scenario.find("DCGM_EXP_XID_ERRORS_COUNT", UUID=gpu.uuid).stop(inject)
    scenario.series.append(Series("DCGM_EXP_XID_ERRORS_COUNT", {
        **scenario.find("DCGM_EXP_XID_ERRORS_COUNT", UUID=gpu.uuid).labels, "xid": "173"}, tl.appears(2, inject)))
    scenario.alert_tests.append(b.at("2m10s", "GpuXidUnclassified", b.expect(
        "GpuXidUnclassified", "warning", {**b.gpu_labels(gpu), "xid": "173"},
        f"Unclassified XID 173 on GPU 0 of {gpu.host}",
        f"{gpu.ref()} reported XID 173 2 time(s) in the exporter's XID window. The kit does not know this code: "
        "look it up in NVIDIA's XID catalogue.")))
    scenarios.append(scenario)

    scenario, gpus = fault("double-bit ECC error on GPU 1")
    gpu = gpus[1]
    scenario.set("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", tl.change(0, 2, inject), UUID=gpu.uuid)
    scenario.alert_tests += [b.at("1m50s", "GpuEccDoubleBitError"), b.at("2m10s", "GpuEccDoubleBitError", b.expect(
        "GpuEccDoubleBitError", "critical", b.gpu_labels(gpu),
        f"Uncorrectable ECC errors on GPU 1 of {gpu.host}",
        f"{gpu.ref()} has 2 uncorrectable (double-bit) ECC error(s) since the driver loaded. Data in GPU memory "
        "may be corrupt: drain the GPU's engines and reset the GPU."))]
    scenarios.append(scenario)

    scenario, gpus = fault("row remap failure on GPU 0, row remap and page retirement pending on GPU 1")
    scenario.set("DCGM_FI_DEV_ROW_REMAP_FAILURE", tl.change(0, 1, inject), UUID=gpus[0].uuid)
    scenario.set("DCGM_FI_DEV_ROW_REMAP_PENDING", tl.change(0, 1, inject), UUID=gpus[1].uuid)
    scenario.set("DCGM_FI_DEV_RETIRED_PENDING", tl.change(0, 3, inject), UUID=gpus[1].uuid)
    g0, g1 = gpus
    scenario.alert_tests += [
        b.at("2m10s", "GpuRowRemapFailure", b.expect(
            "GpuRowRemapFailure", "critical", b.gpu_labels(g0), f"Row remapping failed on GPU 0 of {g0.host}",
            f"{g0.ref()} could not remap a faulty memory row: no spare row is left. Take the GPU out of service, "
            "run field diagnostics and replace it.")),
        b.at("2m50s", "GpuRowRemapPending"),  # pending needs 1m
        b.at("3m20s", "GpuRowRemapPending", b.expect(
            "GpuRowRemapPending", "warning", b.gpu_labels(g1), f"Row remap pending on GPU 1 of {g1.host}",
            f"{g1.ref()} has a memory row remap waiting for a GPU reset. Drain the GPU's engines and reset it at "
            "the next opportunity.")),
        b.at("3m20s", "GpuRetiredPagesPending", b.expect(
            "GpuRetiredPagesPending", "warning", b.gpu_labels(g1), f"Page retirement pending on GPU 1 of {g1.host}",
            f"{g1.ref()} has 3 memory page(s) waiting for retirement at the next driver reload (GPUs before "
            "Ampere). Drain the GPU's engines and reset it.")),
    ]
    scenarios.append(scenario)

    warn, crit = b.t.gpu_temp_margin_warning_celsius, b.t.gpu_temp_margin_critical_celsius
    scenario, gpus = fault("thermal margin below the warning threshold on GPU 0")
    gpu = gpus[0]
    spec = b.catalog.gpu_models[gpu.model]
    scenario.set("DCGM_FI_DEV_GPU_TEMP_LIMIT", tl.change(15, warn - 1, inject), UUID=gpu.uuid)
    scenario.set("DCGM_FI_DEV_GPU_TEMP", tl.change(spec.slowdown_temp_celsius - 15,
                                                   spec.slowdown_temp_celsius - warn + 1, inject), UUID=gpu.uuid)
    warning = b.expect(
        "GpuThermalMarginLow", "warning", b.gpu_labels(gpu),
        f"GPU 0 of {gpu.host} is near its slowdown temperature",
        f"{gpu.ref()} is {warn - 1:.1f} °C from its own slowdown threshold (warning below {warn:g} °C of margin).")
    scenario.alert_tests += [b.at("3m50s", "GpuThermalMarginLow"), b.at("4m20s", "GpuThermalMarginLow", warning)]
    scenarios.append(scenario)

    # Without the thermal-margin field the margin is the GPU's own slowdown temperature minus its temperature.
    scenario, gpus = fault("GPU 1 at its slowdown temperature, no thermal-margin field")
    gpu = gpus[1]
    scenario.drop("DCGM_FI_DEV_GPU_TEMP_LIMIT", UUID=gpu.uuid)
    scenario.set("DCGM_FI_DEV_GPU_TEMP", tl.change(spec.slowdown_temp_celsius - 15,
                                                   spec.slowdown_temp_celsius - crit + 1, inject), UUID=gpu.uuid)
    critical = b.expect(
        "GpuThermalMarginLow", "critical", b.gpu_labels(gpu),
        f"GPU 1 of {gpu.host} is at its slowdown temperature",
        f"{gpu.ref()} is {crit - 1:.1f} °C from its own slowdown threshold (critical below {crit:g} °C of margin). "
        "Drain it before it throttles or shuts down.")
    warning = b.expect(
        "GpuThermalMarginLow", "warning", b.gpu_labels(gpu),
        f"GPU 1 of {gpu.host} is near its slowdown temperature",
        f"{gpu.ref()} is {crit - 1:.1f} °C from its own slowdown threshold (warning below {warn:g} °C of margin).")
    scenario.alert_tests += [b.at("2m20s", "GpuThermalMarginLow"), b.at("2m40s", "GpuThermalMarginLow", critical),
                             b.at("4m20s", "GpuThermalMarginLow", critical, warning)]
    scenarios.append(scenario)

    scenario, gpus = fault("GPU 0 thermally throttled half of the time")
    gpu = gpus[0]
    scenario.set("DCGM_FI_DEV_THERMAL_VIOLATION", tl.ramp_change(0, 0.5e9 * tl.interval, inject), UUID=gpu.uuid)
    scenario.alert_tests += [b.at("9m", "GpuThermalThrottling"), b.at("10m", "GpuThermalThrottling", b.expect(
        "GpuThermalThrottling", "warning", b.gpu_labels(gpu), f"GPU 0 of {gpu.host} is thermally throttled",
        f"{gpu.ref()} was thermally throttled 50% of the last 5 minutes (warning above "
        f"{b.t.gpu_throttle_ratio_warning:g})."))]
    scenarios.append(scenario)

    scenario, gpus = fault("power brake on GPU 1")
    gpu = gpus[1]
    brake = scenario.find("DCGM_EXP_CLOCK_EVENTS_COUNT", UUID=gpu.uuid)
    scenario.series.append(Series(brake.name, {**brake.labels, "clock_event": "hw_power_brake"},
                                  tl.appears(12, inject)))
    scenario.alert_tests += [b.at("2m50s", "GpuHardwareSlowdown"), b.at("3m20s", "GpuHardwareSlowdown", b.expect(
        "GpuHardwareSlowdown", "warning", {**b.gpu_labels(gpu), "clock_event": "hw_power_brake"},
        f"Hardware slowdown (hw_power_brake) on GPU 1 of {gpu.host}",
        f"{gpu.ref()} reported the clocks event hw_power_brake 12 time(s) in the exporter's window: its clocks "
        "are cut by half or more."))]
    scenarios.append(scenario)

    ratio = round(b.t.gpu_power_over_limit_ratio + 0.05, 4)
    scenario, gpus = fault("GPU 0 draws more than its enforced power limit")
    gpu = gpus[0]
    limit = b.catalog.gpu_models[gpu.model].power_limit_watts
    scenario.set("DCGM_FI_DEV_POWER_USAGE", tl.change(limit * 0.97, limit * ratio, inject), UUID=gpu.uuid)
    scenario.alert_tests += [b.at("6m50s", "GpuPowerAboveLimit"), b.at("7m20s", "GpuPowerAboveLimit", b.expect(
        "GpuPowerAboveLimit", "warning", b.gpu_labels(gpu),
        f"GPU 0 of {gpu.host} draws more than its power limit",
        f"{gpu.ref()} draws {percent(ratio)} of the power limit the driver enforces (warning above "
        f"{b.t.gpu_power_over_limit_ratio:g} times the limit, for 5 minutes)."))]
    scenarios.append(scenario)

    scenario, gpus = fault("GPU 1 falls off the bus (its series disappear)")
    gpu = gpus[1]
    for s in scenario.where(lambda s: s.labels.get("UUID") == gpu.uuid):
        s.stop(inject)
    expected = b.expect(
        "GpuMissing", "critical", b.gpu_labels(gpu), f"GPU 1 of {gpu.host} is missing",
        f"{gpu.ref()} was reported within the last {b.t.gpu_missing_lookback} but is no longer, while the host's "
        "dcgm-exporter is up: it probably fell off the bus.")
    scenario.alert_tests += [b.at("1m50s", "GpuMissing"), b.at("2m10s", "GpuMissing", expected),
                             b.at("6m", "GpuMissing", expected)]
    scenarios.append(scenario)

    scenario, gpus = fault("dcgm-exporter down (every GPU series goes with it)")
    host = gpus[0].host
    for s in scenario.where(lambda s: s.name.startswith("DCGM_")):
        s.stop(inject)
    scenario.set("up", tl.change(1, 0, inject), job=b.jobs.dcgm)
    scenario.alert_tests += [
        b.at("2m50s", "DcgmExporterDown"),
        b.at("3m20s", "DcgmExporterDown", b.expect(
            "DcgmExporterDown", "warning", {b.host: host, "instance": f"{host}:9400", "job": b.jobs.dcgm},
            f"dcgm-exporter on {host} is down",
            f"Prometheus cannot scrape dcgm-exporter at {host}:9400 on {host}: GPU faults on this host go unseen.")),
        b.at("5m", "GpuMissing"),  # the exporter is down, not the GPUs
    ]
    scenarios.append(scenario)

    # An exporter restart (one failed scrape, every series gone and back) is not a missing GPU.
    scenario, gpus = fault("dcgm-exporter restart raises nothing")
    for s in scenario.where(lambda s: s.name.startswith("DCGM_")):
        s.gap(inject)
    up = scenario.find("up", job=b.jobs.dcgm)
    up.samples[inject] = 0
    scenario.alert_tests += [b.at(t, alert) for t in ("2m10s", "3m", "5m")
                             for alert in ("GpuMissing", "DcgmExporterDown", "HostDown")]
    scenarios.append(scenario)
    return scenarios


def engine_faults(b: Builder) -> list[Scenario]:
    tl = Timeline(10, 121)
    inject = tl.at(120)
    scenarios = []
    model = b.default_model()

    def fault(name: str, inventory: bool = True) -> tuple[Scenario, Engine]:
        scenario = Scenario(name, tl)
        series, _, engine = b.busy_host(tl, "gpu-node-1", 2, "H100-SXM", model, parts=("vllm",))
        scenario.series += [s for s in series if inventory or s.name != ENGINE_GPU_INFO]
        return scenario, engine

    def engine_down(scenario: Scenario, engine: Engine, at: int) -> None:
        for s in scenario.where(lambda s: s.name.startswith("vllm:") and s.labels["instance"] == engine.instance):
            s.stop(at)
        scenario.set("up", tl.change(1, 0, at), job=b.jobs.vllm, instance=engine.instance)

    def down_expectation(engine: Engine, model_name: str | None) -> dict[str, Any]:
        labels = {b.host: engine.host, "instance": engine.instance, "job": b.jobs.vllm}
        if model_name:
            labels["model_name"] = model_name
        return b.expect("VllmEngineDown", "critical", labels,
                        f"vLLM engine {engine.instance} on {engine.host} is down",
                        f"Prometheus cannot scrape the vLLM engine {engine.instance} on {engine.host} "
                        f"(model: {model_name or 'unknown'}).")

    for inventory, title in ((True, "model from the inventory"), (False, "model from its last scrape")):
        scenario, engine = fault(f"vLLM engine down, {title}", inventory)
        engine_down(scenario, engine, inject)
        expected = down_expectation(engine, model)
        scenario.alert_tests += [b.at("2m50s", "VllmEngineDown"), b.at("3m20s", "VllmEngineDown", expected),
                                 b.at("6m", "VllmEngineDown", expected)]
        scenarios.append(scenario)

    scenario = Scenario("vLLM engine that never answered and is not in the inventory", tl)
    engine = Engine("gpu-node-9", model)
    scenario.series.append(Series("up", {"instance": engine.instance, "job": b.jobs.vllm, b.host: engine.host},
                                  tl.flat(0)))
    scenario.alert_tests.append(b.at("2m", "VllmEngineDown", down_expectation(engine, None)))
    scenarios.append(scenario)

    scenario, engine = fault("vLLM engine stuck: requests in flight, no tokens")
    scenario.set("vllm:generation_tokens_total", tl.ramp_change(30000, 0, inject))
    scenario.set("vllm:num_requests_running", tl.flat(30))
    scenario.set("vllm:num_requests_waiting", tl.change(2, 10, inject))
    window = duration_seconds(b.t.engine_stuck_window)
    fires = 120 - tl.interval + window + 60  # last token at 1m50s, then the window, then `for`
    scenario.alert_tests += [
        b.at(f"{int(fires - 20)}s", "VllmEngineStuck"),
        b.at(f"{int(fires + 10)}s", "VllmEngineStuck", b.expect(
            "VllmEngineStuck", "critical", b.engine_labels(engine),
            f"vLLM engine {engine.instance} ({engine.model_name}) generates no tokens",
            f"{engine.ref()} has 40 request(s) running or waiting but generated no token in the last "
            f"{b.t.engine_stuck_window}.")),
    ]
    scenarios.append(scenario)

    waiting = b.t.queue_waiting_requests_warning + 30
    scenario, engine = fault("requests pile up in the queue")
    scenario.set("vllm:num_requests_waiting", tl.change(2, waiting, inject))
    scenario.alert_tests += [b.at("6m50s", "VllmQueueBacklog"), b.at("7m20s", "VllmQueueBacklog", b.expect(
        "VllmQueueBacklog", "warning", b.engine_labels(engine),
        f"Requests pile up on vLLM engine {engine.instance} ({engine.model_name})",
        f"{engine.ref()} has {waiting} request(s) waiting (warning above {b.t.queue_waiting_requests_warning} "
        "for 5 minutes)."))]
    scenarios.append(scenario)

    usage = round((1 + b.t.kv_cache_usage_warning) / 2, 4)
    preemptions = b.t.preemptions_per_second_warning * 4
    for old_names in (False, True):
        scenario = Scenario(f"KV cache full with preemptions ({'vLLM < 0.11 names' if old_names else 'vLLM V1'})", tl)
        engine = Engine("gpu-node-1", model)
        scenario.series += b.vllm_engine(tl, engine, old_names=old_names)
        kv = "vllm:gpu_cache_usage_perc" if old_names else "vllm:kv_cache_usage_perc"
        scenario.set(kv, tl.change(0.82, usage, inject))
        scenario.set("vllm:num_preemptions_total", tl.ramp_change(1, preemptions * tl.interval, inject))
        scenario.alert_tests += [b.at("7m", "VllmKvCacheSaturated"), b.at("9m", "VllmKvCacheSaturated", b.expect(
            "VllmKvCacheSaturated", "warning", b.engine_labels(engine),
            f"KV cache of vLLM engine {engine.instance} ({engine.model_name}) is full",
            f"{engine.ref()} uses {percent(usage)} of its KV cache and preempts more than "
            f"{b.t.preemptions_per_second_warning:g} request(s) per second."))]
        scenarios.append(scenario)

    scenario, engine = fault("KV cache full without preemptions is healthy")
    scenario.set("vllm:kv_cache_usage_perc", tl.flat(usage))
    scenario.alert_tests.append(b.at("9m", "VllmKvCacheSaturated"))
    scenarios.append(scenario)

    for severity, share in (("warning", b.t.engine_error_ratio_warning * 2),
                            ("critical", min(0.9, b.t.engine_error_ratio_critical * 2))):
        scenario = Scenario(f"vLLM engine fails {percent(share)} of its requests", tl)
        engine = Engine("gpu-node-1", model)
        scenario.series += b.vllm_engine(tl, engine)
        requests = 10 * tl.interval
        scenario.set("vllm:request_success_total", tl.ramp(requests * (0.95 - share)), finished_reason="stop")
        scenario.set("vllm:request_success_total", tl.ramp(requests * share), finished_reason="error")
        expected = [b.expect(
            "VllmErrorRatioHigh", level, b.engine_labels(engine),
            f"vLLM engine {engine.instance} ({engine.model_name}) fails {'many ' if level == 'critical' else ''}"
            "requests",
            f"{engine.ref()} failed {percent(share)} of its finished requests over the last 5 minutes "
            f"({level} above {getattr(b.t, f'engine_error_ratio_{level}'):g}).")
            for level in (("critical", "warning") if severity == "critical" else ("warning",))]
        scenario.alert_tests.append(b.at("10m", "VllmErrorRatioHigh", *expected))
        scenarios.append(scenario)
    return scenarios


def slo_burns(b: Builder) -> list[Scenario]:
    """Per SLO and per set of targets (each model with its own, and the defaults): a fast burn pages
    (and tickets), a slow burn only tickets; the inter-token SLO also on vLLM's old metric name."""
    tl = Timeline(60, 41)
    spec = b.catalog.slos
    period = b.settings.slo.period
    factors = {s: [w.factor(period) for w in spec.alert_windows if w.severity == s] for s in ("critical", "warning")}
    slow = (max(factors["warning"]) + min(factors["critical"])) / 2

    def fast(budget: float) -> float:
        """Twice the page factor, or halfway to the highest burn the budget allows (every event bad)."""
        ceiling = 1 / budget
        factor = max(factors["critical"]) if ceiling > max(factors["critical"]) else min(factors["critical"])
        return round(min(2 * factor, (ceiling + factor) / 2), 4)
    scenarios = []
    models = [*sorted(b.settings.slo.models), b.default_model()]
    for slo in spec.slos:
        for model in models:
            targets = b.settings.slo.targets_for(model)
            budget = float(slo_rules.error_budget(slo, targets))
            cases = [("fast", fast(budget), ("critical", "warning"), False)]
            if model == models[-1]:
                cases.append(("slow", slow, ("warning",), False))
                if slo.latency and len(slo.latency.histograms) > 1:
                    cases.append(("fast, vLLM < 0.11 names", fast(budget), ("critical", "warning"), True))
            for title, burn, severities, old_names in cases:
                share = round(burn * budget, 6)
                scenario = Scenario(f"{slo.name} SLO of {model}: {title} burn ({burn:g}x)", tl)
                engine = Engine("gpu-node-1", model)
                scenario.series += b.vllm_engine(tl, engine, old_names=old_names, bad_share={slo.name: share})
                measured = share / budget
                expected = [b.expect(
                    slo.alert, severity,
                    {"slo": slo.name, "model_name": model},
                    f"{model} burns its {slo.title.lower()} error budget",
                    f"{model} spends its {slo.title.lower()} error budget {measured:.1f} times as fast as the "
                    f"{period} objective allows ({slo_rules.describe_target(slo, targets)}). "
                    f"{severity.capitalize()} above "
                    + " or ".join(f"{w.factor(period):g}x over {w.long} and {w.short}"
                                  for w in spec.alert_windows if w.severity == severity) + ".",
                ) for severity in severities]
                # The burn is steady from the start, so every window sees it once the 5m one is full.
                scenario.alert_tests += [b.at("10m", slo.alert, *expected)]
                if title == "fast":
                    labels = {"model_name": model, "slo": slo.name}
                    for record, value in (("slo:objective:ratio", getattr(targets, slo.objective)),
                                          ("slo:error_budget:ratio", budget),
                                          ("slo:current_burn_rate:ratio", burn),
                                          ("slo:sli_error:ratio_rate1h", share)):
                        scenario.expect_value(f'{record}{{slo="{slo.name}"}}', "10m", labels, value)
                scenarios.append(scenario)
    return scenarios


def host_faults(b: Builder) -> list[Scenario]:
    tl = Timeline(10, 121)
    inject = tl.at(120)
    model = b.default_model()
    scenarios = []

    def fault(name: str) -> tuple[Scenario, Engine]:
        scenario = Scenario(name, tl)
        series, _, engine = b.busy_host(tl, "gpu-node-1", 2, "H100-SXM", model)
        scenario.series += series + b.pipeline(tl)
        return scenario, engine

    scenario, engine = fault("host down: every target unreachable")
    host = engine.host
    for s in scenario.where(lambda s: s.labels.get(b.host) == host and s.name != ENGINE_GPU_INFO):
        if s.name == "up":
            s.samples = tl.change(1, 0, inject)
        else:
            s.stop(inject)
    scenario.alert_tests += [b.at("2m50s", "HostDown"), b.at("3m20s", "HostDown", b.expect(
        "HostDown", "critical", {b.host: host}, f"Host {host} is down",
        f"No scrape target of {host} answers (node_exporter, dcgm-exporter and vLLM): the host is down or "
        "unreachable. Its GPU and engine alerts are silenced meanwhile."))]
    scenarios.append(scenario)

    scenario, engine = fault("node_exporter down, the host's other targets up")
    scenario.set("up", tl.change(1, 0, inject), job=b.jobs.node)
    instance = f"{engine.host}:9100"
    scenario.alert_tests += [b.at("3m50s", "TargetDown"), b.at("4m20s", "TargetDown", b.expect(
        "TargetDown", "warning", {b.host: engine.host, "instance": instance, "job": b.jobs.node},
        f"{b.jobs.node} target {instance} is down",
        f"Prometheus cannot scrape {b.jobs.node} at {instance} on {engine.host}.")), b.at("5m", "HostDown")]
    scenarios.append(scenario)

    mountpoint = b.t.disk_mountpoints[-1]
    for severity, free in (("warning", b.t.disk_free_ratio_warning / 2 + b.t.disk_free_ratio_critical / 2),
                           ("critical", b.t.disk_free_ratio_critical / 2)):
        scenario, engine = fault(f"{mountpoint} {percent(free)} free")
        scenario.set("node_filesystem_avail_bytes", tl.change(4e11, round(1e12 * free), inject), mountpoint=mountpoint)
        device = scenario.find("node_filesystem_avail_bytes", mountpoint=mountpoint).labels["device"]
        levels = ("critical", "warning") if severity == "critical" else ("warning",)
        expected = [b.expect(
            "HostDiskSpaceLow", level, {b.host: engine.host, "mountpoint": mountpoint, "device": device},
            f"{mountpoint} on {engine.host} is {'almost full' if level == 'critical' else 'filling up'}",
            f"{mountpoint} ({device}) on {engine.host} has {percent(free)} of its space free ({level} below "
            f"{getattr(b.t, f'disk_free_ratio_{level}'):g}).") for level in levels]
        scenario.alert_tests += [b.at("6m50s", "HostDiskSpaceLow"), b.at("7m20s", "HostDiskSpaceLow", *expected)]
        scenarios.append(scenario)

    scenario, _ = fault("rule evaluation failures, rejected reload, failing notifications")
    scenario.set("prometheus_rule_evaluation_failures_total", tl.ramp_change(0, 1, inject))
    scenario.set("prometheus_config_last_reload_successful", tl.change(1, 0, inject))
    scenario.set("alertmanager_notifications_failed_total", tl.ramp_change(0, 1, inject))
    failing = scenario.find("prometheus_rule_evaluation_failures_total").labels
    am = scenario.find("alertmanager_notifications_failed_total").labels
    scenario.alert_tests += [
        b.at("6m50s", "PrometheusRuleEvaluationFailures"),
        b.at("8m", "PrometheusRuleEvaluationFailures", b.expect(
            "PrometheusRuleEvaluationFailures", "critical",
            {b.host: failing[b.host], "instance": failing["instance"], "rule_group": failing["rule_group"]},
            f"Prometheus fails to evaluate rule group {failing['rule_group']}",
            f"Prometheus {failing['instance']} failed 30 evaluation(s) of {failing['rule_group']} in the last "
            "5 minutes: its alerts cannot fire.")),
        b.at("8m", "PrometheusConfigReloadFailed", b.expect(
            "PrometheusConfigReloadFailed", "warning", {b.host: failing[b.host], "instance": failing["instance"]},
            f"Prometheus {failing['instance']} rejected its configuration",
            f"The last configuration reload of Prometheus {failing['instance']} failed; it still runs the "
            "previous configuration.")),
        b.at("8m", "AlertmanagerNotificationsFailing", b.expect(
            "AlertmanagerNotificationsFailing", "warning",
            {b.host: am[b.host], "instance": am["instance"], "integration": "webhook"},
            "Alertmanager fails to send webhook notifications",
            f"Alertmanager {am['instance']} failed 30 webhook notification(s) in the last 5 minutes.")),
    ]
    scenarios.append(scenario)
    return scenarios


def recording(b: Builder) -> list[Scenario]:
    """Values of the recording rules the alerts and dashboards read."""
    tl = Timeline(10, 61)
    model = b.default_model()
    scenario = Scenario("recording rules: old and new vLLM names, efficiency, inventory joins", tl)
    series, gpus, engine = b.busy_host(tl, "gpu-node-1", 2, "H100-SXM", model)
    scenario.series += series
    old = Engine("gpu-node-2", model)
    scenario.series += b.vllm_engine(tl, old, old_names=True)
    h = b.host
    power = round(b.catalog.gpu_models["H100-SXM"].power_limit_watts * 0.97)
    checks = [
        (f'instance_model:vllm_kv_cache_usage:max{{instance="{old.instance}"}}',
         {**b.engine_labels(old)}, 0.82),
        (f'instance_model:vllm_kv_cache_usage:max{{instance="{engine.instance}"}}', b.engine_labels(engine), 0.82),
        (f'instance_model:vllm_generation_tokens:rate5m{{instance="{engine.instance}"}}', b.engine_labels(engine),
         3000),
        ("model:vllm_requests:rate5m", {"model_name": model}, 20),
        (f'instance_model:vllm_served_model:info{{instance="{old.instance}"}}', b.engine_labels(old), 1),
        (f'instance_model:vllm_served_model:info{{instance="{engine.instance}"}}', b.engine_labels(engine), 1),
        (f'host:dcgm_gpus:count{{{h}="{engine.host}"}}', {h: engine.host}, 2),
        (f'host_gpu:dcgm_temp_margin:celsius{{gpu="0", {h}="{engine.host}"}}', b.gpu_labels(gpus[0]), 15),
        (f'host_gpu:dcgm_power_throttle:ratio_rate5m{{gpu="0", {h}="{engine.host}"}}', b.gpu_labels(gpus[0]), 0.4),
        (f'host:dcgm_energy_joules:rate5m{{{h}="{engine.host}"}}', {h: engine.host}, 2 * power),
        (f'instance_model:dcgm_energy_joules:rate5m{{instance="{engine.instance}"}}', b.engine_labels(engine),
         2 * power),
        (f'instance_model:vllm_generation_tokens_per_gpu:rate5m{{instance="{engine.instance}"}}',
         b.engine_labels(engine), 1500),
        (f'instance_model:vllm_generation_tokens_per_joule:ratio_rate5m{{instance="{engine.instance}"}}',
         b.engine_labels(engine), 3000 / (2 * power)),
        ('llmobs:xid_class:info{xid="79"}', {"xid": "79", "xid_class": "fatal",
                                            "xid_name": b.catalog.xids.codes[79].name,
                                            "xid_action": b.catalog.xids.actions[b.catalog.xids.codes[79].action]}, 1),
    ]
    for expr, labels, value in checks:
        scenario.expect_value(expr, "10m", labels, value)
    return [scenario]


FILES = {
    "quiet.test.yml": (quiet, 60, RULE_FILES),
    "gpu.test.yml": (gpu_faults, 10, NO_SLO_RULES),
    "engine.test.yml": (engine_faults, 10, NO_SLO_RULES),
    "slo.test.yml": (slo_burns, 60, RULE_FILES),
    "host.test.yml": (host_faults, 10, NO_SLO_RULES),
    "recording.test.yml": (recording, 10, NO_SLO_RULES),
}


def render(settings: Settings, catalog: Catalog | None = None) -> dict[str, str]:
    """{file name: promtool test file} for prometheus/tests/."""
    builder = Builder(settings, catalog or catalog_mod.load())
    result = {}
    for name, (scenarios, interval, rule_files) in FILES.items():
        document = {
            "rule_files": list(rule_files),
            "evaluation_interval": f"{interval}s",
            "tests": [s.render() for s in scenarios(builder)],
        }
        result[name] = dump(document, _HEADER)
    return result
