"""Site settings: thresholds, SLO targets and label names, merged over the packaged defaults.

A site passes only what it changes (from its inventory or a YAML file); `load_settings()` merges that
over `catalog/defaults.yaml`, validates the result against the catalog, and raises a ConfigError that
names the field and the fix. Nothing is written anywhere before this succeeds.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmobs import catalog as catalog_mod
from llmobs.errors import ConfigError, ConfigErrors, from_validation_error

# A share strictly between 0 and 1.
Ratio = Annotated[float, Field(gt=0, lt=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Labels(_Strict):
    host: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", description="target label that names a server")


class Thresholds(_Strict):
    gpu_temp_margin_warning_celsius: float = Field(gt=0, le=30)
    gpu_temp_margin_critical_celsius: float = Field(ge=0, le=30)
    gpu_throttle_ratio_warning: Ratio
    gpu_power_over_limit_ratio: float = Field(gt=1, le=2)
    kv_cache_usage_warning: float = Field(gt=0, le=1)
    preemptions_per_second_warning: float = Field(gt=0)
    queue_waiting_requests_warning: int = Field(gt=0)
    engine_error_ratio_warning: Ratio
    engine_error_ratio_critical: Ratio
    disk_free_ratio_warning: Ratio
    disk_free_ratio_critical: Ratio
    disk_mountpoints: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.gpu_temp_margin_critical_celsius >= self.gpu_temp_margin_warning_celsius:
            raise ValueError("gpu_temp_margin_critical_celsius must be below gpu_temp_margin_warning_celsius")
        if self.engine_error_ratio_critical <= self.engine_error_ratio_warning:
            raise ValueError("engine_error_ratio_critical must be above engine_error_ratio_warning")
        if self.disk_free_ratio_critical >= self.disk_free_ratio_warning:
            raise ValueError("disk_free_ratio_critical must be below disk_free_ratio_warning")
        return self


class SloTargets(_Strict):
    availability_objective: Ratio
    ttft_seconds: float = Field(gt=0)
    ttft_objective: Ratio
    inter_token_latency_seconds: float = Field(gt=0)
    inter_token_latency_objective: Ratio


class SloOverride(_Strict):
    """Per-model SLO: any SloTargets field, the rest comes from `slo.defaults`."""

    availability_objective: Ratio | None = None
    ttft_seconds: float | None = Field(None, gt=0)
    ttft_objective: Ratio | None = None
    inter_token_latency_seconds: float | None = Field(None, gt=0)
    inter_token_latency_objective: Ratio | None = None


class Slo(_Strict):
    period: str = Field(pattern=r"^\d+d$")
    defaults: SloTargets
    models: dict[str, SloOverride] = Field(default_factory=dict, description="per vLLM model_name")

    def targets_for(self, model_name: str) -> SloTargets:
        override = self.models.get(model_name)
        return self.defaults.model_copy(update=override.model_dump(exclude_none=True) if override else {})


class Settings(_Strict):
    labels: Labels
    thresholds: Thresholds
    slo: Slo


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return copy.deepcopy(override)


def defaults() -> dict[str, Any]:
    text = resources.files(catalog_mod).joinpath("defaults.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _check_slo_buckets(settings: Settings, catalog: catalog_mod.Catalog) -> list[ConfigError]:
    """Latency SLO targets must be real bucket boundaries, or `le` selects no series at all."""
    errors = []
    families = {
        "ttft_seconds": ("vllm:time_to_first_token_seconds", "time_to_first_token"),
        "inter_token_latency_seconds": ("vllm:inter_token_latency_seconds", "inter_token_latency"),
    }
    scopes = [("slo.defaults", settings.slo.defaults)] + [
        (f"slo.models.{name}", settings.slo.targets_for(name)) for name in settings.slo.models
    ]
    for scope, targets in scopes:
        for field, (metric, family) in families.items():
            value = getattr(targets, field)
            bounds = catalog.bucket_families[family]
            if value not in bounds:
                nearest = min(bounds, key=lambda b: abs(b - value))
                errors.append(ConfigError(
                    f"{scope}.{field}", f"{value} is not a bucket boundary of {metric}",
                    f"use a boundary such as {nearest} (boundaries: {', '.join(map(str, bounds))})",
                ))
    return errors


def load_settings(overrides: dict[str, Any] | None = None, source: str | None = None) -> Settings:
    """Merge `overrides` over the defaults and validate them against the catalog."""
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError("(top level)", f"settings must be a mapping, got {type(overrides).__name__}",
                          "pass a YAML mapping such as `thresholds: {...}`", source)
    merged = _merge(defaults(), overrides or {})
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as error:
        raise from_validation_error(error, source) from None
    errors = _check_slo_buckets(settings, catalog_mod.load())
    if errors:
        for error in errors:
            error.source = source
        raise ConfigErrors(errors)
    return settings


def load_settings_file(path: Path | None) -> Settings:
    if path is None:
        return load_settings()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(str(path), f"not valid YAML: {error}", "fix the YAML syntax", str(path)) from None
    return load_settings(data or {}, source=str(path))
