"""prices.yml: the settings' GPU and electricity prices as series (conventions.PRICE_SERIES), which the
catalog's llmobs.cost recording rules turn into cost per hour, per million tokens and idle GPU-hours."""

from __future__ import annotations

from llmobs.catalog import Catalog
from llmobs.conventions import (
    DEFAULT_GPU_HOUR_PRICE,
    ELECTRICITY_PRICE,
    GPU_HOUR_PRICE,
    HOST_ELECTRICITY_PRICE,
    HOST_GPU_HOUR_PRICE,
    PRICES_GROUP,
)
from llmobs.pricing import prices
from llmobs.rules.models import RecordingRule, RuleGroup
from llmobs.settings import Settings


def _price(record: str, value: float, labels: dict[str, str] | None = None) -> RecordingRule:
    return RecordingRule(record=record, expr=f"vector({value:.10g})", labels=labels or {})


def prices_group(settings: Settings, catalog: Catalog) -> RuleGroup:
    """One constant series per price; GPU models by the modelName DCGM reports for them."""
    resolved, host = prices(settings.cost), settings.labels.host
    model_name = {key: model.model_name for key, model in catalog.gpu_models.items()}
    rules = [_price(GPU_HOUR_PRICE, hourly, {"modelName": model_name[key]})
             for key, hourly in resolved.gpu_hour_usd.items()]
    if resolved.default_gpu_hour_usd is not None:
        rules.append(_price(DEFAULT_GPU_HOUR_PRICE, resolved.default_gpu_hour_usd))
    if resolved.electricity_kwh_usd is not None:
        rules.append(_price(ELECTRICITY_PRICE, resolved.electricity_kwh_usd))
    for name, entry in resolved.hosts.items():
        rules += [_price(HOST_GPU_HOUR_PRICE, hourly, {host: name, "modelName": model_name[key]})
                  for key, hourly in entry.gpu_hour_usd.items()]
        if entry.electricity_kwh_usd is not None:
            rules.append(_price(HOST_ELECTRICITY_PRICE, entry.electricity_kwh_usd, {host: name}))
    return RuleGroup(name=PRICES_GROUP, rules=tuple(rules))
