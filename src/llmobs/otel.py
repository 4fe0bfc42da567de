"""OpenTelemetry settings (`otel`): how Prometheus takes the OTLP metrics applications push to it.

Prometheus 3.5 serves OTLP/HTTP at /api/v1/otlp/v1/metrics with `--web.enable-otlp-receiver`
(compose/services/prometheus.yaml), behind the same web config (basic auth, TLS) as the rest of its API.
`prometheus_config` is the `otlp` and `storage` part of prometheus.yml (llmobs.scrape merges it in):

- the translation strategy is fixed (conventions.OTLP_TRANSLATION_STRATEGY): the GenAI recording rules read
  the names it gives (`gen_ai.client.operation.duration`, unit s -> gen_ai_client_operation_duration_seconds);
- `keep_identifying_resource_attributes`: service.name, service.namespace and service.instance.id stay labels
  (service_name...) besides the job and instance Prometheus makes of them, so the rules group by application;
- the resource attributes of `promote_resource_attributes` become labels on every series (the rest stays
  on target_info);
- an out-of-order window: OTLP pushes carry their own timestamps and arrive late on a retry.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from llmobs.conventions import OTLP_TRANSLATION_STRATEGY
from llmobs.tracing_settings import Traces
from llmobs.types import Duration, Strict

# OpenTelemetry's attribute names (dots, lower case), as promote_resource_attributes takes them.
ResourceAttribute = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]*$")]


class OtlpMetrics(Strict):
    promote_resource_attributes: tuple[ResourceAttribute, ...] = Field(
        description="resource attributes that become labels of every series an application pushes")
    out_of_order_time_window: Duration = Field(
        description="how late a pushed sample may arrive (retries, slow exporters) and still be stored")


class Otel(Strict):
    metrics: OtlpMetrics
    traces: Traces = Field(default_factory=Traces)


def prometheus_config(otel: Otel) -> dict[str, Any]:
    """The `otlp` and `storage` sections of prometheus.yml."""
    return {
        "otlp": {
            "translation_strategy": OTLP_TRANSLATION_STRATEGY,
            "keep_identifying_resource_attributes": True,
            "promote_resource_attributes": list(otel.metrics.promote_resource_attributes),
        },
        "storage": {"tsdb": {"out_of_order_time_window": otel.metrics.out_of_order_time_window}},
    }
