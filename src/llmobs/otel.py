"""OpenTelemetry settings (`otel`): how Prometheus takes the OTLP metrics applications push to it.

Prometheus 3.5 serves OTLP/HTTP at /api/v1/otlp/v1/metrics with `--web.enable-otlp-receiver` (the prometheus
role's `prometheus_otlp_receiver`), behind the same web config (basic auth, TLS) as the rest of its API.
`prometheus_config` is the `otlp` and `storage` part of prometheus.yml (llmobs.scrape merges it in):

- the translation strategy is fixed (conventions.OTLP_TRANSLATION_STRATEGY): the GenAI recording rules read
  the names it gives (`gen_ai.client.operation.duration`, unit s -> gen_ai_client_operation_duration_seconds);
- Prometheus makes job (service.namespace/service.name) and instance (service.instance.id) of the identifying
  attributes; they become labels of every series (service_name...) only when promoted, so they always are
  (conventions.OTLP_IDENTIFYING_ATTRIBUTES): the rules group by application. `keep_identifying_resource_attributes`
  keeps them on target_info too;
- the resource attributes of `promote_resource_attributes` become labels on every series (the rest stays
  on target_info);
- an out-of-order window: OTLP pushes carry their own timestamps and arrive late on a retry.

A Prometheus without the receiver (Debian's 3.5.3, built without it) takes OTLP through the gateway
(compose/services/otlp-gateway.yaml): vmagent with `-opentelemetry.usePrometheusNaming`, remote-writing to
Prometheus' /api/v1/write. It names the metrics as Prometheus does, but puts every resource attribute on every
series and makes neither job nor instance: `gateway_relabel_config` (compose/otlp-gateway/relabel.yml) adds
them as Prometheus does and drops the SDK's own attributes, so the rules read one set of names on either path.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from llmobs.conventions import OTLP_IDENTIFYING_ATTRIBUTES, OTLP_TRANSLATION_STRATEGY
from llmobs.tracing_settings import Traces
from llmobs.types import Duration, Strict
from llmobs.yamlfmt import dump, generated_header

if TYPE_CHECKING:
    from llmobs.settings import Settings

GATEWAY_RELABEL_FILE = "compose/otlp-gateway/relabel.yml"
# The attributes every SDK puts on its resource (OpenTelemetry's telemetry.sdk.* and telemetry.distro.*): on
# target_info only behind Prometheus' receiver, so the gateway drops them from the series unless promoted.
SDK_RESOURCE_ATTRIBUTES = ("telemetry.sdk.name", "telemetry.sdk.language", "telemetry.sdk.version",
                           "telemetry.distro.name", "telemetry.distro.version")

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
            "promote_resource_attributes": promoted(otel),
        },
        "storage": {"tsdb": {"out_of_order_time_window": otel.metrics.out_of_order_time_window}},
    }


def promoted(otel: Otel) -> list[str]:
    """The resource attributes that become labels: the identifying ones, then the settings' (once each)."""
    return list(dict.fromkeys([*OTLP_IDENTIFYING_ATTRIBUTES, *otel.metrics.promote_resource_attributes]))


def _label(attribute: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", attribute)  # how both translate an attribute name (dots to underscores)


def gateway_relabel_config(otel: Otel) -> list[dict[str, Any]]:
    """vmagent's -remoteWrite.relabelConfig: job and instance as Prometheus' receiver makes them (helper.go
    createAttributes: service.namespace/service.name, service.instance.id), the SDK's attributes dropped."""
    name, namespace, instance = (_label(attribute) for attribute in OTLP_IDENTIFYING_ATTRIBUTES)
    dropped = [_label(attribute) for attribute in SDK_RESOURCE_ATTRIBUTES if attribute not in promoted(otel)]
    return [
        {"action": "replace", "source_labels": [name], "regex": "(.+)", "target_label": "job"},
        {"action": "replace", "source_labels": [namespace, name], "regex": "(.+);(.+)", "replacement": "$1/$2",
         "target_label": "job"},
        {"action": "replace", "source_labels": [instance], "regex": "(.+)", "target_label": "instance"},
        *([{"action": "labeldrop", "regex": "|".join(dropped)}] if dropped else []),
    ]


def artifacts(settings: Settings) -> dict[str, str]:
    """compose/otlp-gateway/relabel.yml for `llmobs generate`."""
    header = generated_header("the llmobs settings (otel section)")
    return {GATEWAY_RELABEL_FILE: dump(gateway_relabel_config(settings.otel), header)}
