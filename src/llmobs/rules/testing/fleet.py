"""The input series of the promtool tests: a fleet of hosts whose exporters look like the real ones.

Names, labels and label values are those of dcgm-exporter, vLLM and node_exporter (llmobs.exposition,
shared with the simulators), the GPUs' own limits come from catalog/gpus.yaml, and the inputs are derived
from the settings' thresholds and SLO targets. `Fleet.expect` writes the labels and annotations an alert
must carry out by hand, independently of the rule templates, so a wrong template fails a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmobs import exposition
from llmobs.catalog import Catalog
from llmobs.conventions import COMPOSE_SERVICES, ENGINE_GPU_INFO, PORTS, instance
from llmobs.conventions import Engine as Engine_
from llmobs.rules import alert_list
from llmobs.rules.alerts import runbook_url
from llmobs.rules.inventory import gpu_list
from llmobs.rules.slo import error_budget
from llmobs.rules.testing.engines import other_engine
from llmobs.rules.testing.promtool import Sample, Series, Timeline
from llmobs.settings import Settings

Parts = tuple[str, ...]  # of a GPU server: "node", "dcgm", "vllm"


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
    port: int = PORTS["vllm"]
    kind: Engine_ = "vllm"  # the engine it runs (settings' `engine`)

    @property
    def instance(self) -> str:
        return instance(self.host, self.port)

    def ref(self) -> str:
        return f"{self.model_name} on {self.instance} ({self.host})"


class Fleet:
    """Input series and expected alerts for the settings."""

    def __init__(self, settings: Settings, catalog: Catalog):
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

    def gpu_labels(self, gpu: Gpu) -> dict[str, str]:
        return {self.host: gpu.host, "gpu": str(gpu.index), "UUID": gpu.uuid, "modelName": gpu.model_name}

    def engine_labels(self, engine: Engine) -> dict[str, str]:
        return {self.host: engine.host, "instance": engine.instance, "model_name": engine.model_name}

    def layer_labels(self, engine: Engine) -> dict[str, str]:
        """The labels of the engine-agnostic layer's series (and of the alerts on them)."""
        return {**self.engine_labels(engine), "inference_engine": engine.kind}

    def target(self, job: str, address: str, port: int, host: str) -> dict[str, str]:
        """The labels Prometheus gives a target of `job` (a key of the `jobs` settings)."""
        return exposition.target_labels(getattr(self.jobs, job), instance(address, port), self.host, host)

    # ------------------------------------------------------------------ GPUs (dcgm-exporter)
    def gpu(self, host: str, index: int, model: str = "H100-SXM") -> Gpu:
        return Gpu(host, index, model, self.catalog.gpu_models[model].model_name, exposition.gpu_uuid(host, index))

    def dcgm_host(self, tl: Timeline, host: str, gpus: list[Gpu], busy: bool = True) -> list[Series]:
        """A host's dcgm-exporter: its target and, per GPU, the fields the rules read."""
        series = [Series("up", self.target("dcgm", host, PORTS["dcgm"], host), tl.flat(1))]
        for gpu in gpus:
            series += self.dcgm_gpu(tl, gpu, busy)
        return series

    def dcgm_gpu(self, tl: Timeline, gpu: Gpu, busy: bool) -> list[Series]:
        spec = self.catalog.gpu_models[gpu.model]
        labels = {**dict(exposition.gpu_labels(gpu.index, gpu.uuid, gpu.model_name, gpu.host)),
                  exposition.DRIVER_VERSION_FIELD: exposition.DRIVER_VERSION,
                  **self.target("dcgm", gpu.host, PORTS["dcgm"], gpu.host)}
        margin = 15 if busy else spec.slowdown_temp_celsius - spec.idle_temp_celsius
        power = round(spec.power_limit_watts * 0.97) if busy else spec.idle_power_watts
        memory = spec.memory_mib
        # Under load the power limiter holds the draw near the limit, with short overshoots.
        power_values = tl.flat(power)
        if busy:
            power_values[tl.steps // 4: tl.steps // 4 + 2] = [spec.power_limit_watts * 1.02] * 2
        window = {exposition.WINDOW_LABEL: str(exposition.XID_WINDOW_MS)}

        def s(name: str, values: list[Sample], **extra: str) -> Series:
            return Series(name, {**labels, **extra}, values)

        # NVLink counters, summed over the GPU's links; absent on PCIe cards.
        nvlink = [s(f"DCGM_FI_DEV_NVLINK_{kind}_ERROR_COUNT_TOTAL", tl.flat(0))
                  for kind in ("CRC_FLIT", "CRC_DATA", "REPLAY", "RECOVERY")] if spec.nvlink else []
        return [
            *nvlink,
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
            # A healthy link replays a PCIe packet now and then (1 a minute when busy).
            s("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", tl.ramp(tl.interval / 60 if busy else 0, 40)),
            s("DCGM_EXP_XID_ERRORS_COUNT", tl.flat(0), **window),
            # Power capping (busy) or idle clocks (idle): normal clocks events, never alerts.
            s("DCGM_EXP_CLOCK_EVENTS_COUNT", tl.flat(40 if busy else 60),
              clock_event="power_cap" if busy else "gpu_idle", **window),
        ]

    # ------------------------------------------------------------------ hosts (node_exporter)
    def node_host(self, tl: Timeline, host: str) -> list[Series]:
        base = self.target("node", host, PORTS["node"], host)
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
        target = exposition.target_labels(self.jobs.vllm, engine.instance, self.host, engine.host)
        labels = {**exposition.vllm_labels(engine.model_name), **target}
        targets = self.settings.slo.targets_for(engine.model_name)
        shares = {s.name: 0.3 * float(error_budget(s, targets)) for s in self.catalog.slos.slos}
        shares.update(bad_share or {})
        per_step = tl.interval if busy else 0
        requests = 10 * per_step  # 10 requests/s when busy

        def s(name: str, values: list[Sample], **extra: str) -> Series:
            return Series(name, {**labels, **extra}, values)

        errors = requests * shares["availability"]
        series = [
            Series("up", target, tl.flat(1)),
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
        if not old_names:
            # vLLM 0.33: the queue by reason, and admission refusals (labels model_name and reason only).
            refused = {"model_name": engine.model_name, **target}
            series += [
                s("vllm:num_requests_waiting_by_reason", tl.flat(2 if busy else 0), reason="capacity"),
                s("vllm:num_requests_waiting_by_reason", tl.flat(0), reason="deferred"),
                *(Series("vllm:admission_rejections_total", {**refused, "reason": reason}, tl.flat(0))
                  for reason in ("max_num_queued_reqs", "max_num_queued_tokens")),
            ]
        for spec in self.catalog.slos.slos:
            if not spec.latency:
                continue
            names = self.catalog.slo_histograms(spec, "vllm")
            name = names[-1 if old_names else 0]
            events = requests * (300 if spec.name != "ttft" else 1)  # ~30 output tokens per request
            threshold = exposition.le_value(getattr(targets, spec.latency.threshold))
            series += [
                s(f"{name}_bucket", tl.ramp(events * (1 - shares[spec.name])), le=threshold),
                s(f"{name}_bucket", tl.ramp(events), le="+Inf"),
            ]
        return series

    def engine_gpu_info(self, tl: Timeline, engine: Engine, gpus: list[Gpu]) -> list[Series]:
        """What llmobs.rules.inventory records for the engine (inventory.yml is not under test)."""
        labels = {**self.layer_labels(engine), "gpus": gpu_list(g.index for g in gpus)}
        return [Series(ENGINE_GPU_INFO, {**labels, "gpu": str(g.index)}, tl.flat(1)) for g in gpus]

    def engine_series(self, tl: Timeline, engine: Engine, busy: bool = True,
                      bad_share: dict[str, float] | None = None) -> list[Series]:
        """A busy (10 requests/s) engine's /metrics, as its kind exposes them."""
        if engine.kind == "vllm":
            return self.vllm_engine(tl, engine, busy, bad_share=bad_share)
        return other_engine(self, tl, engine, busy, bad_share)

    # ------------------------------------------------------------------ the monitoring stack
    def pipeline(self, tl: Timeline, host: str = "monitor-1") -> list[Series]:
        def service(job: str) -> dict[str, str]:
            return self.target(job, COMPOSE_SERVICES[job], PORTS[job], host)

        prometheus, alertmanager = service("prometheus"), service("alertmanager")
        return [
            Series("up", prometheus, tl.flat(1)),
            Series("up", alertmanager, tl.flat(1)),
            Series("up", service("grafana"), tl.flat(1)),
            Series("prometheus_rule_evaluation_failures_total",
                   {**prometheus, "rule_group": "/etc/prometheus/rules/alerts.yml;llmobs.alerts.gpu-xid"}, tl.flat(0)),
            Series("prometheus_config_last_reload_successful", prometheus, tl.flat(1)),
            Series("alertmanager_notifications_total", {**alertmanager, "integration": "webhook"}, tl.ramp(1)),
            Series("alertmanager_notifications_failed_total", {**alertmanager, "integration": "webhook"}, tl.flat(0)),
            # The OpenTelemetry Collector of a site that collects traces, sending every span.
            Series("otelcol_exporter_send_failed_spans", {**service("otelcol"), "exporter": "otlp_grpc/jaeger"},
                   tl.flat(0)),
        ]

    def busy_host(self, tl: Timeline, host: str, gpus: int = 2, model: str = "H100-SXM",
                  model_name: str = "test-model", busy: bool = True,
                  parts: Parts = ("node", "dcgm", "vllm")) -> tuple[list[Series], list[Gpu], Engine]:
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
