"""What every dashboard module reads: the settings, the catalog, the label selectors and variables that the
dashboards share (`host`, `gpu`, `model_name`, `instance`), and the series a query may use."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from llmobs import rules
from llmobs.catalog import Catalog
from llmobs.dashboards import panels
from llmobs.dashboards.lint import TARGET_LABELS, KnownSeries
from llmobs.errors import ConfigError
from llmobs.rules import alerts
from llmobs.settings import Settings

# Dashboard uids, shared by the links between dashboards.
FLEET_UID = "llmobs-fleet"
VLLM_UID = "llmobs-vllm"
GPU_UID = "llmobs-gpu-node"
SLO_UID = "llmobs-slo"
EFFICIENCY_UID = "llmobs-efficiency"


@dataclass(frozen=True)
class Context:
    settings: Settings
    catalog: Catalog

    @property
    def host(self) -> str:
        """The target label that names a server (setting `labels.host`)."""
        return self.settings.labels.host

    # ------------------------------------------------------------------ selectors
    def _selector(self, metric: str, matchers: list[str], extra: str) -> str:
        return f"{metric}{{{', '.join(matchers + ([extra] if extra else []))}}}"

    def by_host(self, metric: str, extra: str = "") -> str:
        return self._selector(metric, [f'{self.host}=~"$host"'], extra)

    def gpu(self, metric: str, extra: str = "") -> str:
        """A GPU-layer series of the selected hosts and GPUs."""
        return self._selector(metric, [f'{self.host}=~"$host"', 'gpu=~"$gpu"'], extra)

    def engine(self, metric: str, extra: str = "") -> str:
        """An inference-layer series (or instance-level rule) of the selected hosts, models and instances."""
        return self._selector(
            metric, [f'{self.host}=~"$host"', 'model_name=~"$model_name"', 'instance=~"$instance"'], extra)

    def model(self, metric: str, extra: str = "") -> str:
        return self._selector(metric, ['model_name=~"$model_name"'], extra)

    @property
    def gpu_legend(self) -> str:
        return f"{{{{{self.host}}}}} GPU {{{{gpu}}}}"

    @property
    def gpu_by(self) -> str:
        return f"{self.host}, gpu"

    @property
    def jobs(self) -> Any:
        return self.settings.jobs

    @property
    def filesystems(self) -> str:
        """The node_exporter matchers of the watched model and data volumes, as the disk alerts use them."""
        return alerts.template_context(self.settings)["filesystems"]

    # ------------------------------------------------------------------ alert thresholds
    @functools.cached_property
    def _alert_lines(self) -> dict[str, list[dict[str, Any]]]:
        return rules.panel_thresholds(self.settings)

    def alert_steps(self, series: str) -> panels.Steps:
        """The colours of a panel of `series`: where its alerts fire, from the same settings."""
        lines = self._alert_lines.get(series)
        if not lines:
            raise ValueError(f"no alert declares a threshold on {series} (alerts.yaml `threshold`)")
        value = {line["severity"]: line["value"] for line in lines}
        if lines[0]["direction"] == "above":
            return panels.Steps.rising(value.get("warning"), value.get("critical"))
        return panels.Steps.falling(value.get("warning"), value.get("critical"))

    def alert_name(self, series: str) -> str:
        return self._alert_lines[series][0]["alert"]

    def alert_note(self, series: str, lead: str = "Dashed lines") -> str:
        """The sentence that says which alert each threshold (line or colour) is."""
        lines = sorted(self._alert_lines[series], key=lambda line: line["severity"] != "warning")
        return f" {lead}: where " + "; ".join(
            f"{line['alert']} ({line['severity']}) fires, {line['direction']} {line['value']:g} ({line['setting']})"
            for line in lines) + "."

    def quantile(self, value: float) -> str:
        """The `quantile` label value of the latency recording rules, which must exist."""
        if value not in self.catalog.recording.quantiles:
            raise ConfigError("recording_rules.quantiles", f"the dashboards need quantile {value}",
                              f"add {value} to quantiles in src/llmobs/catalog/recording_rules.yaml")
        return str(value)

    def requirement(self, *metrics: str) -> str:
        """The sentence a panel's description carries when its metrics exist only on some systems."""
        notes = []
        for name in metrics:
            metric = self.catalog.metric(name)
            if metric.dcgm and metric.dcgm.profiling:
                notes.append("a DCGM profiling field: it needs dcgm-exporter with SYS_ADMIN and a data-centre GPU")
            if metric.optional:
                notes.append(f"{name} exists {metric.optional}")
        if not notes:
            raise ValueError(f"{metrics} are not optional: the panel must not say it may be empty")
        return f" Optional source ({'; '.join(dict.fromkeys(notes))}): the panel is empty without it."

    # ------------------------------------------------------------------ variables
    def host_variable(self, metric: str) -> object:
        return panels.query_variable(
            "host", "Host", f"label_values({metric}, {self.host})",
            f"Servers (target label `{self.host}`) that expose {metric}.")

    def gpu_variable(self) -> object:
        return panels.query_variable(
            "gpu", "GPU", f'label_values(DCGM_FI_DEV_GPU_TEMP{{{self.host}=~"$host"}}, gpu)',
            "GPU index (nvidia-smi order) on the selected hosts.")

    def model_variable(self, filter_by_host: bool = True) -> object:
        """Served model names, read from a vLLM series (node_exporter has a model_name label too); the
        fleet-wide variable reads the per-model recording rule, which stays cheap on a large fleet."""
        query = (f'label_values(vllm:num_requests_running{{{self.host}=~"$host"}}, model_name)' if filter_by_host
                 else "label_values(model:vllm_requests_running:sum, model_name)")
        return panels.query_variable("model_name", "Model", query,
                                     "Served model name (vLLM --served-model-name).")

    def instance_variable(self) -> object:
        return panels.query_variable(
            "instance", "Instance",
            f'label_values(vllm:num_requests_running{{{self.host}=~"$host", model_name=~"$model_name"}}, instance)',
            "vLLM server (scrape target) serving the selected models.")

    # ------------------------------------------------------------------ links
    def gpu_link(self) -> panels.Link:
        return panels.Link("GPU node: ${__field.labels." + self.host + "}", GPU_UID, {"host": self.host})

    def engine_link(self) -> panels.Link:
        return panels.Link("vLLM serving: ${__field.labels.model_name}", VLLM_UID,
                           {"host": self.host, "model_name": "model_name", "instance": "instance"})

    def model_link(self) -> panels.Link:
        return panels.Link("vLLM serving: ${__field.labels.model_name}", VLLM_UID, {"model_name": "model_name"})

    # ------------------------------------------------------------------ known series
    def known_series(self) -> KnownSeries:
        """Catalog metrics (with the labels they carry plus the target labels), the catalog's recording
        rules and the series the rule generators add (inventory and XID info series, SLO rules)."""
        labels: dict[str, frozenset[str]] = {}
        target = TARGET_LABELS | {self.host}
        for metric in self.catalog.metrics:
            own = frozenset(self.catalog.labels_of(metric)) | target
            if metric.type == "histogram":
                labels[f"{metric.name}_bucket"] = own | {"le"}
                labels[f"{metric.name}_sum"] = labels[f"{metric.name}_count"] = own
            else:
                labels[metric.name] = own
        generated = self.catalog.generated_names(self.settings.slo.period)
        names = frozenset(labels) | self.catalog.recorded_names() | generated
        return KnownSeries(names=names, labels=labels)
