"""The metrics catalog: the kit's one source of truth, loaded from the YAML beside this module.

`load()` validates the data files (metrics, recording rules, GPU models, alerts, XID classes, SLOs) and
returns a `Catalog` that every generator, simulator and test reads. What the results are called (series,
rule groups, runbook pages) is llmobs.conventions; llmobs.rules renders the recording-rule templates.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from llmobs import conventions
from llmobs.catalog.engines import EngineInfo, EngineSignal
from llmobs.conventions import ENGINE_GPU_INFO as ENGINE_GPU_INFO  # re-exported for llmobs.dashboards
from llmobs.conventions import XID_CLASS_INFO as XID_CLASS_INFO
from llmobs.conventions import Engine
from llmobs.errors import ConfigError, from_validation_error
from llmobs.types import DURATION_PATTERN as DURATION_PATTERN  # re-exported: catalog files use durations
from llmobs.types import Duration, Strict, StrictAliased
from llmobs.types import duration_seconds as duration_seconds

Layer = Literal["gpu", "inference", "application", "business", "platform", "probe"]
MetricType = Literal["gauge", "counter", "histogram"]
Severity = Literal["critical", "warning", "info"]
Component = Literal["gpu", "engine", "slo", "host", "pipeline"]
# How the kit alerts on an XID (src/llmobs/catalog/xids.yaml says which of NVIDIA's resolutions maps to which).
XidClass = Literal["fatal", "recovery_action", "application", "investigate", "informational"]

SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")


class LayerInfo(Strict):
    title: str
    source: str
    default_labels: tuple[str, ...] = ()


class DcgmField(Strict):
    default: bool = Field(description="in dcgm-exporter's etc/default-counters.csv")
    field_id: int = Field(gt=0, description="DCGM field ID (dcgm_fields.h): the exporter renders in this order")
    profiling: bool = Field(False, description="DCP field: needs SYS_ADMIN and a data-centre GPU")


class Deprecation(Strict):
    replaced_by: str
    since: str


class Metric(Strict):
    name: str
    layer: Layer
    type: MetricType
    unit: str
    help: str
    meaning: str
    labels: tuple[str, ...] | None = Field(None, description="replaces the layer's default labels")
    extra_labels: tuple[str, ...] = ()
    label_values: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    buckets: str | None = None
    dcgm: DcgmField | None = None
    deprecated: Deprecation | None = None
    optional: str | None = Field(None, description="when the series is absent on a healthy system")
    engine: Engine | None = Field(None, description="the engine that serves it (inference-layer metrics only)")
    versions: str | None = Field(None, description="the engine releases its name, type and labels hold for")

    @model_validator(mode="after")
    def _consistent(self) -> Metric:
        if (self.layer == "inference") != (self.engine is not None):
            raise ValueError("inference-layer metrics (and only those) name their `engine`")
        if self.engine not in (None, "vllm") and self.versions is None:
            raise ValueError(f"{self.name}: give the {self.engine} releases it holds for in `versions`")
        if (self.type == "histogram") != (self.buckets is not None):
            raise ValueError("histograms name a bucket family in `buckets`; other types must not")
        if (self.layer == "gpu") != (self.dcgm is not None):
            raise ValueError("GPU-layer metrics (and only those) need a `dcgm` entry")
        return self


class LabelField(Strict):
    name: str
    help: str


class RecordingSpec(Strict):
    record: str
    expr: str
    unit: str
    meaning: str
    labels: dict[str, str] = Field(default_factory=dict)


class RecordingGroup(Strict):
    name: str
    interval: Duration | None = None  # none: the global evaluation interval
    rules: tuple[RecordingSpec, ...]


class LatencyHistogram(Strict):
    name: str
    meaning: str
    sources: tuple[str, ...]
    compat: str | None = Field(None, description="why a vLLM-only histogram is still recorded (dashboards skip it)")


class RecordingCatalog(Strict):
    quantiles: tuple[float, ...]
    histogram_interval: Duration = Field(
        "10s", description="evaluation interval of the histogram groups, one per latency and request histogram")
    latency_histograms: tuple[LatencyHistogram, ...]
    request_histograms: tuple[LatencyHistogram, ...] = ()  # recorded the same way, each in a group of its own
    engine_signals: tuple[EngineSignal, ...]
    groups: tuple[RecordingGroup, ...]

    def signal(self, record: str) -> EngineSignal:
        return next(s for s in self.engine_signals if s.record == record)


class GpuModel(Strict):
    model_name: str
    power_limit_watts: float
    idle_power_watts: float
    memory_mib: int
    slowdown_temp_celsius: float
    shutdown_temp_celsius: float
    max_operating_temp_celsius: float
    idle_temp_celsius: float
    datacenter: bool
    nvlink: bool
    profiling: bool
    row_remapping: bool
    # Hardware profile of the simulators (clocks, and the speed that bounds an engine's throughput).
    sm_clock_max_mhz: int = Field(gt=0)
    mem_clock_mhz: int = Field(gt=0)
    hbm: bool = Field(description="HBM reports a memory temperature; GDDR boards report 0")
    memory_bandwidth_gbps: float = Field(gt=0)
    fp16_tflops: float = Field(gt=0, description="dense FP16 tensor throughput")


# ---------------------------------------------------------------------------------------- alerts
class AlertThreshold(Strict):
    series: str
    setting: str = Field(description="a field of the `thresholds` settings")
    direction: Literal["above", "below"]


class AlertRule(StrictAliased):
    alert: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$")
    severity: Severity
    for_: str = Field(alias="for", pattern=DURATION_PATTERN)
    expr: str
    summary: str
    description: str
    threshold: AlertThreshold | None = None


class Runbook(Strict):
    meaning: str
    impact: str
    diagnose: tuple[str, ...] = Field(min_length=1)
    act: tuple[str, ...] = Field(min_length=1)


class AlertFamily(Strict):
    page: str = Field(pattern=r"^[a-z0-9-]+$", description="docs/runbooks/<page>.md")
    title: str
    component: Component
    runbook: Runbook
    alerts: tuple[AlertRule, ...] = Field(min_length=1)


class AlertCatalog(Strict):
    components: dict[Component, str]
    families: tuple[AlertFamily, ...]

    @model_validator(mode="after")
    def _unique(self) -> AlertCatalog:
        pages = [f.page for f in self.families]
        if len(set(pages)) != len(pages):
            raise ValueError(f"runbook pages must be unique; got {pages}")
        seen: dict[tuple[str, str], str] = {}
        for family in self.families:
            for rule in family.alerts:
                key = (rule.alert, rule.severity)
                if key in seen:
                    raise ValueError(f"alert {rule.alert} has two {rule.severity} rules (pages {seen[key]}, "
                                     f"{family.page}); give each severity of an alert one rule")
                seen[key] = family.page
        return self


class XidResolution(StrictAliased):
    """One of NVIDIA's resolution buckets (the catalogue's immediate action) and the kit's class for it."""

    nvidia: str = Field(description="the bucket's name in NVIDIA's sources")
    xid_class: XidClass = Field(alias="class")
    action: str = Field(description="what the operator does (the alerts' xid_action label)")


class XidCode(StrictAliased):
    name: str = Field(description="NVIDIA's mnemonic")
    message: str = Field(description="dcgm-exporter's err_msg for the code")
    resolution: str = Field(description="a key of `resolutions`")
    note: str | None = Field(None, description="where the sources differ, which one the kit follows and why")
    xid_class: XidClass = Field(alias="class", description="set from the resolution on load, never written")

    @property
    def action(self) -> str:
        """Key of XidCatalog.actions (one action per resolution)."""
        return self.resolution


class XidExporterMessages(Strict):
    no_xid: str = Field(description="err_msg of code 0: no XID since the exporter started")
    unknown: str = Field(description="err_msg of a code past the exporter's table")


class XidCatalog(Strict):
    resolutions: dict[str, XidResolution]
    exporter_messages: XidExporterMessages
    codes: dict[int, XidCode]

    @field_validator("codes", mode="before")
    @classmethod
    def _class_from_resolution(cls, codes: Any, info: ValidationInfo) -> Any:
        """Each code's class is its resolution's: set it here, so the file states it once per resolution."""
        resolutions: dict[str, XidResolution] | None = info.data.get("resolutions")
        if resolutions is None:  # `resolutions` failed validation: report that alone
            return {}
        if not isinstance(codes, dict):
            return codes
        known = ", ".join(sorted(resolutions))
        classed = {}
        for code, entry in codes.items():
            if isinstance(entry, dict):
                if "class" in entry:
                    raise ValueError(f"XID {code}: `class` follows from the resolution; remove it")
                if "resolution" not in entry:
                    raise ValueError(f"XID {code}: `resolution` is missing; set NVIDIA's, one of {known}")
                resolution = resolutions.get(entry["resolution"])
                if resolution is None:
                    raise ValueError(f"XID {code}: unknown resolution {entry['resolution']!r}; use one of {known}, "
                                     "or add NVIDIA's bucket to `resolutions`")
                entry = {**entry, "class": resolution.xid_class}
            classed[code] = entry
        return classed

    @property
    def actions(self) -> dict[str, str]:
        """Resolution -> what the operator does."""
        return {name: resolution.action for name, resolution in self.resolutions.items()}

    def message_of(self, code: int) -> str:
        """dcgm-exporter's err_msg for a code: its table, "No Error" for 0, else "Unknown Error"."""
        if code == 0:
            return self.exporter_messages.no_xid
        xid = self.codes.get(code)
        return xid.message if xid else self.exporter_messages.unknown


# ------------------------------------------------------------------------------------------- SLOs
class AlertWindow(Strict):
    severity: Severity
    long: str = Field(pattern=DURATION_PATTERN)
    short: str = Field(pattern=DURATION_PATTERN)
    budget_consumed: float = Field(gt=0, le=1)

    def factor(self, period: str) -> float:
        """Burn rate that spends `budget_consumed` of the period's budget within the long window."""
        return round(self.budget_consumed * duration_seconds(period) / duration_seconds(self.long), 6)


class RatioSli(Strict):
    metric: str
    error_matchers: str
    refused: str | None = Field(None, description="counter of requests refused before they reach `metric`: "
                                                  "failures, counted among the requests too")
    events: str = Field(description="what the objective counts, in words")


class LatencySli(Strict):
    threshold: str = Field(description="the SloTargets field holding the latency target")
    events: str = Field(description="what the histogram counts, in words")
    histograms: tuple[str, ...] = Field(
        min_length=1, description="one per engine that has the signal (vLLM's current name first, then its old names)")


class SloDefinition(Strict):
    name: str = Field(pattern=r"^[a-z_]+$")
    title: str
    alert: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$")
    objective: str = Field(description="the SloTargets field holding the objective")
    meaning: str
    ratio: RatioSli | None = None
    latency: LatencySli | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SloDefinition:
        if (self.ratio is None) == (self.latency is None):
            raise ValueError(f"SLO {self.name}: give exactly one of `ratio` or `latency`")
        return self


class SloCatalog(Strict):
    sli_windows: tuple[str, ...]
    runbook: Runbook
    alert_windows: tuple[AlertWindow, ...]
    slos: tuple[SloDefinition, ...]

    @model_validator(mode="after")
    def _windows_recorded(self) -> SloCatalog:
        for window in self.alert_windows:
            for duration in (window.long, window.short):
                if duration not in self.sli_windows:
                    raise ValueError(f"alert window {duration} is not in sli_windows {list(self.sli_windows)}")
        return self


class Catalog(Strict):
    layers: dict[Layer, LayerInfo]
    engines: dict[Engine, EngineInfo]
    bucket_families: dict[str, tuple[float, ...]]
    dcgm_label_fields: tuple[LabelField, ...]
    metrics: tuple[Metric, ...]
    recording: RecordingCatalog
    gpu_models: dict[str, GpuModel]
    alerts: AlertCatalog
    xids: XidCatalog
    slos: SloCatalog

    @model_validator(mode="after")
    def _cross_checks(self) -> Catalog:
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"metric names must be unique; duplicated: {duplicates}")
        field_ids = [m.dcgm.field_id for m in self.metrics if m.dcgm]
        shared = sorted({i for i in field_ids if field_ids.count(i) > 1})
        if shared:
            raise ValueError(f"DCGM field IDs must be unique; shared by several metrics: {shared}")
        for metric in self.metrics:
            if metric.buckets and metric.buckets not in self.bucket_families:
                raise ValueError(f"{metric.name}: unknown bucket family {metric.buckets!r}")
            if metric.deprecated and metric.deprecated.replaced_by not in names:
                raise ValueError(f"{metric.name}: replaced_by {metric.deprecated.replaced_by!r} is not in the catalog")
        for hist in (*self.recording.latency_histograms, *self.recording.request_histograms):
            for source in hist.sources:
                if source not in names or self.metric(source).type != "histogram":
                    raise ValueError(f"latency histogram {hist.name}: {source} is not a histogram of the catalog")
        for slo in self.slos.slos:
            if slo.ratio:
                needed = [(name, "counter") for name in (slo.ratio.metric, slo.ratio.refused) if name]
            else:
                needed = [(name, "histogram") for name in slo.latency.histograms]
            for name, kind in needed:
                if name not in names or self.metric(name).type != kind:
                    raise ValueError(f"SLO {slo.name}: {name} is not a {kind} of the catalog")
        slo_alerts = {slo.alert for slo in self.slos.slos}
        clashes = slo_alerts & {rule.alert for rule in self.alert_rules()}
        if clashes:
            raise ValueError(f"SLO alert names {sorted(clashes)} are also used in alerts.yaml; rename one")
        return self

    # ------------------------------------------------------------------ lookups
    def metric(self, name: str) -> Metric:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(f"{name!r} is not in the metrics catalog")

    def layer_metrics(self, layer: Layer) -> list[Metric]:
        return [m for m in self.metrics if m.layer == layer]

    def engine_metrics(self, engine: Engine) -> list[Metric]:
        """The metrics one engine serves, in catalog order."""
        return [m for m in self.metrics if m.engine == engine]

    def slo_engines(self, slo: SloDefinition) -> set[Engine]:
        """The engines whose series the SLO reads: a model on any other gets no such SLO."""
        names = slo.latency.histograms if slo.latency else (slo.ratio.metric,)
        return {engine for name in names if (engine := self.metric(name).engine)}

    def slo_histograms(self, slo: SloDefinition, engine: Engine) -> list[str]:
        """The histograms a latency SLO reads on one engine: its current name first, then old ones."""
        return [name for name in slo.latency.histograms if self.metric(name).engine == engine]

    def slo_histogram(self, slo: SloDefinition, engine: Engine) -> Metric | None:
        """The (current) histogram a latency SLO reads on one engine."""
        return next((m for name in slo.latency.histograms if (m := self.metric(name)).engine == engine), None)

    def labels_of(self, metric: Metric) -> tuple[str, ...]:
        if metric.labels is not None:
            base = metric.labels
        elif metric.engine is not None:
            base = self.engines[metric.engine].default_labels
        else:
            base = self.layers[metric.layer].default_labels
        return (*base, *metric.extra_labels)

    def alert_rules(self) -> list[AlertRule]:
        return [rule for family in self.alerts.families for rule in family.alerts]

    def page_of(self, alert: str) -> str:
        """The runbook page (docs/runbooks/<page>.md) of an alert: its family's, or the SLO burn page."""
        for family in self.alerts.families:
            if any(rule.alert == alert for rule in family.alerts):
                return family.page
        if alert in {slo.alert for slo in self.slos.slos}:
            return conventions.SLO_BURN_PAGE
        raise KeyError(f"{alert!r} is not an alert of the catalog")

    def component_of(self, alert: str) -> Component:
        """The component (and so the team) of an alert."""
        for family in self.alerts.families:
            if any(rule.alert == alert for rule in family.alerts):
                return family.component
        if alert in {slo.alert for slo in self.slos.slos}:
            return "slo"
        raise KeyError(f"{alert!r} is not an alert of the catalog")

    def buckets_of(self, metric: Metric) -> tuple[float, ...]:
        if metric.buckets is None:
            raise ValueError(f"{metric.name} is not a histogram")
        return self.bucket_families[metric.buckets]

    def exposed_series_names(self) -> set[str]:
        """Every series name a scrape can produce (histograms expand to _bucket/_sum/_count)."""
        names: set[str] = set()
        for metric in self.metrics:
            if metric.type == "histogram":
                names.update(f"{metric.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(metric.name)
        return names

    # ------------------------------------------------------------------ recorded series
    def recorded_names(self) -> set[str]:
        """Every series the catalog's recording rules record, the latency histograms' included."""
        latency = {name(hist.name, level)
                   for hist in (*self.recording.latency_histograms, *self.recording.request_histograms)
                   for level in conventions.LATENCY_LEVELS
                   for name in (conventions.latency_buckets, conventions.latency_quantile)}
        signals = {signal.record for signal in self.recording.engine_signals}
        return latency | signals | {rule.record for group in self.recording.groups for rule in group.rules}

    def generated_names(self, slo_period: str) -> set[str]:
        """Series the rule generators record besides the catalog's rules: inventory, XID classes, SLOs."""
        return {ENGINE_GPU_INFO, XID_CLASS_INFO, conventions.PROBE_TTFT_TARGET, *conventions.PRICE_SERIES,
                *conventions.slo_series(self.slos.sli_windows, slo_period)}


def _read(name: str) -> Any:
    return yaml.safe_load(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


def _metrics() -> dict[str, Any]:
    """metrics.yaml with each other engine's metrics-<engine>.yaml: their metrics and bucket families."""
    data = _read("metrics.yaml")
    for engine in conventions.ENGINES[1:]:
        extra = _read(f"metrics-{engine}.yaml")
        clash = set(extra.get("bucket_families", {})) & set(data["bucket_families"])
        if clash:
            raise ConfigError("bucket_families", f"metrics-{engine}.yaml redefines {sorted(clash)}",
                              "give the engine's families their own names", "src/llmobs/catalog")
        data = {**data, "bucket_families": {**data["bucket_families"], **extra.get("bucket_families", {})},
                "metrics": [*data["metrics"], *extra["metrics"]]}
    return data


def raw() -> dict[str, Any]:
    """The packaged catalog data as one mapping, before validation (tests derive bad variants from it)."""
    return {
        **_metrics(),
        "engines": _read("engines.yaml"),
        "recording": _read("recording_rules.yaml"),
        "gpu_models": _read("gpus.yaml"),
        "alerts": _read("alerts.yaml"),
        "xids": _read("xids.yaml"),
        "slos": _read("slos.yaml"),
    }


def validate(data: dict[str, Any], source: str = "src/llmobs/catalog") -> Catalog:
    """Validate catalog data; raises ConfigError naming the bad field."""
    try:
        return Catalog.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(error, source=source) from None
    except ValueError as error:  # pragma: no cover - raised by validators outside pydantic
        raise ConfigError("catalog", str(error), "fix the catalog entry", source) from None


@functools.cache
def load() -> Catalog:
    """Load and validate the packaged catalog; raises ConfigError naming the bad field."""
    return validate(raw())
