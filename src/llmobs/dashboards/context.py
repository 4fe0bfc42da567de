"""What every dashboard module reads: the settings, the catalog, the query scopes of the variables the
dashboards share (`host`, `gpu`, `model_name`, `instance`), the alert thresholds a panel draws, and the
series a query may use.

The scopes are `llmobs.promql.Promql` selectors whose matchers are Grafana variables (`host=~"$host"`):
the query functions of `llmobs.dashboards.queries` select in them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from llmobs import rules
from llmobs.catalog import Catalog, LatencyHistogram
from llmobs.dashboards import panels
from llmobs.dashboards.lint import TARGET_LABELS, KnownSeries
from llmobs.errors import ConfigError
from llmobs.promql import Promql, variable
from llmobs.settings import Settings


@dataclass(frozen=True)
class Context:
    settings: Settings
    catalog: Catalog

    @property
    def host(self) -> str:
        """The target label that names a server (setting `labels.host`)."""
        return self.settings.labels.host

    # ------------------------------------------------------------------ scopes
    @functools.cached_property
    def hosts(self) -> Promql:
        """Series of the selected hosts."""
        return Promql((variable(self.host, "host"),))

    @functools.cached_property
    def gpus(self) -> Promql:
        """GPU-layer series of the selected hosts and GPUs."""
        return self.hosts.where(variable("gpu"))

    @functools.cached_property
    def engines(self) -> Promql:
        """Inference-layer series (or instance-level rules) of the selected hosts, models and instances."""
        return self.hosts.where(variable("model_name"), variable("instance"))

    @functools.cached_property
    def models(self) -> Promql:
        """Per-model rules of the selected models."""
        return Promql((variable("model_name"),))

    @property
    def gpu_legend(self) -> str:
        return f"{{{{{self.host}}}}} GPU {{{{gpu}}}}"

    @property
    def host_legend(self) -> str:
        return f"{{{{{self.host}}}}}"

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

    # ------------------------------------------------------------------ catalog
    def quantile(self, value: float) -> str:
        """The `quantile` label value of the latency recording rules, which must exist."""
        if value not in self.catalog.recording.quantiles:
            raise ConfigError("recording_rules.quantiles", f"the dashboards need quantile {value}",
                              f"add {value} to quantiles in src/llmobs/catalog/recording_rules.yaml")
        return str(value)

    def latency_histogram(self, name: str) -> LatencyHistogram:
        """A latency (or vLLM request) histogram of the catalog, whose recording rules the panels read."""
        for histogram in (*self.catalog.recording.latency_histograms, *self.catalog.recording.request_histograms):
            if histogram.name == name:
                return histogram
        raise ConfigError("recording_rules.latency_histograms", f"the dashboards need the latency histogram {name}",
                          f"add {name} to latency_histograms (or request_histograms) in"
                          " src/llmobs/catalog/recording_rules.yaml")

    def slo_target(self, histogram: LatencyHistogram) -> str | None:
        """The setting (a field of slo.defaults) that holds the latency SLO target on this histogram, if an SLO
        of the catalog is set on it."""
        return next((slo.latency.threshold for slo in self.catalog.slos.slos
                     if slo.latency and slo.latency.histograms[0] == histogram.sources[0]), None)

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
