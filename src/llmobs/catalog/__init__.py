"""The metrics catalog: the kit's one source of truth, loaded from the YAML beside this module.

`load()` validates the three data files (metrics, recording rules, GPU models) and returns a `Catalog`
that every generator, simulator and test reads. Recording-rule templates are rendered for a given host
label name by `Catalog.recording_groups(host_label)`.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Literal

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmobs.errors import ConfigError, from_validation_error

Layer = Literal["gpu", "inference", "business", "platform"]
MetricType = Literal["gauge", "counter", "histogram"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerInfo(_Strict):
    title: str
    source: str
    default_labels: tuple[str, ...] = ()


class DcgmField(_Strict):
    default: bool = Field(description="in dcgm-exporter's etc/default-counters.csv")
    profiling: bool = Field(False, description="DCP field: needs SYS_ADMIN and a data-centre GPU")


class Deprecation(_Strict):
    replaced_by: str
    since: str


class Metric(_Strict):
    name: str
    layer: Layer
    type: MetricType
    unit: str
    help: str
    meaning: str
    labels: tuple[str, ...] | None = Field(None, description="replaces the layer's default labels")
    extra_labels: tuple[str, ...] = ()
    label_values: dict[str, tuple[str, ...]] = {}
    buckets: str | None = None
    dcgm: DcgmField | None = None
    deprecated: Deprecation | None = None
    optional: str | None = Field(None, description="when the series is absent on a healthy system")

    @model_validator(mode="after")
    def _consistent(self) -> Metric:
        if (self.type == "histogram") != (self.buckets is not None):
            raise ValueError("histograms name a bucket family in `buckets`; other types must not")
        if (self.layer == "gpu") != (self.dcgm is not None):
            raise ValueError("GPU-layer metrics (and only those) need a `dcgm` entry")
        return self


class LabelField(_Strict):
    name: str
    help: str


class RecordingRule(_Strict):
    record: str
    expr: str
    unit: str
    meaning: str
    labels: dict[str, str] = {}


class RuleGroup(_Strict):
    name: str
    rules: tuple[RecordingRule, ...]


class LatencyHistogram(_Strict):
    name: str
    meaning: str
    sources: tuple[str, ...]


class RecordingCatalog(_Strict):
    quantiles: tuple[float, ...]
    latency_histograms: tuple[LatencyHistogram, ...]
    groups: tuple[RuleGroup, ...]


class GpuModel(_Strict):
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


class Catalog(_Strict):
    layers: dict[Layer, LayerInfo]
    bucket_families: dict[str, tuple[float, ...]]
    dcgm_label_fields: tuple[LabelField, ...]
    metrics: tuple[Metric, ...]
    recording: RecordingCatalog
    gpu_models: dict[str, GpuModel]

    @model_validator(mode="after")
    def _cross_checks(self) -> Catalog:
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"metric names must be unique; duplicated: {duplicates}")
        for metric in self.metrics:
            if metric.buckets and metric.buckets not in self.bucket_families:
                raise ValueError(f"{metric.name}: unknown bucket family {metric.buckets!r}")
            if metric.deprecated and metric.deprecated.replaced_by not in names:
                raise ValueError(f"{metric.name}: replaced_by {metric.deprecated.replaced_by!r} is not in the catalog")
        for hist in self.recording.latency_histograms:
            for source in hist.sources:
                if self.metric(source).type != "histogram":
                    raise ValueError(f"latency histogram {hist.name}: {source} is not a histogram")
        return self

    # ------------------------------------------------------------------ lookups
    def metric(self, name: str) -> Metric:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(f"{name!r} is not in the metrics catalog")

    def layer_metrics(self, layer: Layer) -> list[Metric]:
        return [m for m in self.metrics if m.layer == layer]

    def labels_of(self, metric: Metric) -> tuple[str, ...]:
        base = metric.labels if metric.labels is not None else self.layers[metric.layer].default_labels
        return (*base, *metric.extra_labels)

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

    # ------------------------------------------------------------------ recording rules
    def recording_groups(self, host_label: str = "host") -> list[RuleGroup]:
        """The business layer with its templates rendered: histogram groups first, then the catalog's."""
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)

        def render(text: str) -> str:
            return " ".join(env.from_string(text).render(host=host_label).split())

        groups = [self._latency_group(host_label)]
        for group in self.recording.groups:
            rules = tuple(rule.model_copy(update={"expr": render(rule.expr)}) for rule in group.rules)
            groups.append(RuleGroup(name=group.name, rules=rules))
        return groups

    def recorded_names(self) -> set[str]:
        return {rule.record for group in self.recording_groups() for rule in group.rules}

    def _latency_group(self, host: str) -> RuleGroup:
        by_instance = f"{host}, instance, model_name"
        rules: list[RecordingRule] = []
        for hist in self.recording.latency_histograms:
            unit = self.metric(hist.sources[0]).unit
            instance_buckets = f"instance_model_le:{hist.name}_bucket:rate5m"
            model_buckets = f"model_le:{hist.name}_bucket:rate5m"
            sources = " or ".join(
                f"sum by ({by_instance}, le) (rate({source}_bucket[5m]))" for source in hist.sources
            )
            rules.append(RecordingRule(
                record=instance_buckets, expr=sources, unit="per_second",
                meaning=f"Bucket rates of the {hist.meaning} histogram per instance and model"
                + (f" (also reads the old name {', '.join(hist.sources[1:])})" if len(hist.sources) > 1 else "")
                + ".",
            ))
            rules.append(RecordingRule(
                record=model_buckets, expr=f"sum by (model_name, le) ({instance_buckets})",
                unit="per_second", meaning=f"Bucket rates of the {hist.meaning} histogram per model.",
            ))
            for level, buckets in (("instance_model", instance_buckets), ("model", model_buckets)):
                for quantile in self.recording.quantiles:
                    rules.append(RecordingRule(
                        record=f"{level}:{hist.name}:histogram_quantile5m",
                        expr=f"histogram_quantile({quantile}, {buckets})",
                        unit=unit, labels={"quantile": str(quantile)},
                        meaning=f"P{quantile * 100:g} {hist.meaning} per {level.replace('_', ' and ')}.",
                    ))
        return RuleGroup(name="llmobs.vllm.latency", rules=tuple(rules))


def _read(name: str) -> object:
    return yaml.safe_load(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


@functools.cache
def load() -> Catalog:
    """Load and validate the packaged catalog; raises ConfigError naming the bad field."""
    metrics = _read("metrics.yaml")
    try:
        return Catalog.model_validate({
            **metrics,  # type: ignore[dict-item]
            "recording": _read("recording_rules.yaml"),
            "gpu_models": _read("gpus.yaml"),
        })
    except ValidationError as error:
        raise from_validation_error(error, source="src/llmobs/catalog") from None
    except ValueError as error:  # pragma: no cover - raised by validators outside pydantic
        raise ConfigError("catalog", str(error), "fix the catalog entry") from None
