"""Traces: the OpenTelemetry Collector's configuration and the trace store's (Jaeger v2), from the settings
(`otel.traces`, llmobs.tracing_settings), each checked by llmobs.tracing.check before it is returned.

    vLLM --otlp-traces-endpoint grpc://<monitoring host>:4317
      -> otel-collector  (otlp receiver, gRPC 4317 and HTTP 4318; memory_limiter, batch; otlp_grpc exporter)
      -> jaeger:4317     (Jaeger v2's own otlp receiver, badger storage, query API and UI on 16686)
      <- Grafana         (datasource type jaeger, http://jaeger:16686)

Jaeger rather than Tempo: Jaeger v2 is itself an OpenTelemetry Collector build, so its configuration has
the Collector's layout and the same check covers both; one single-node binary keeps spans in badger with a
TTL and has its own UI, where Tempo needs object storage or a WAL and local blocks, and answers nothing
without Grafana. Grafana reads either (datasource types jaeger and tempo).

Inside their containers both listen on every interface of the container's own network; what a host
exposes is Compose's port publishing, on loopback unless the role is told an interface
(compose/services/otel-collector.yaml). Jaeger publishes only its query port: spans reach it through the
Collector alone.
"""

from __future__ import annotations

from typing import Any

from llmobs.conventions import (
    COLLECTOR_METRICS_PORT,
    OTLP_GRPC_PORT,
    OTLP_HTTP_PORT,
    TRACE_STORE_QUERY_PORT,
    TRACE_STORE_SERVICE,
)
from llmobs.errors import ConfigError, ConfigErrors
from llmobs.settings import Settings
from llmobs.tracing.check import check_collector_config
from llmobs.tracing_settings import Traces
from llmobs.types import duration_seconds
from llmobs.yamlfmt import dump, generated_header

COLLECTOR_FILE = "otel/collector.yaml"
STORE_FILE = "otel/jaeger.yaml"
HEADER = generated_header("src/llmobs/tracing/__init__.py and the settings (otel.traces)")
STORE_ENDPOINT = f"{TRACE_STORE_SERVICE}:{OTLP_GRPC_PORT}"
# Inside the container: every interface of its own network namespace (see the module's docstring).
_LISTEN = "0.0.0.0"
_STORAGE = "llmobs"  # Jaeger's name for its one storage backend


def _seconds(duration: str) -> str:
    """A Go duration (no d, w or y units) of a settings duration."""
    return f"{int(duration_seconds(duration))}s"


def _otlp_receiver() -> dict[str, Any]:
    return {"protocols": {"grpc": {"endpoint": f"{_LISTEN}:{OTLP_GRPC_PORT}"},
                          "http": {"endpoint": f"{_LISTEN}:{OTLP_HTTP_PORT}"}}}


def _telemetry(service_name: str) -> dict[str, Any]:
    """The process's own metrics, for Prometheus: names without unit or _total suffixes, as the
    Collector's documentation lists them (otelcol_receiver_refused_spans, otelcol_exporter_send_failed_spans)."""
    prometheus = {"host": _LISTEN, "port": COLLECTOR_METRICS_PORT, "without_scope_info": True,
                  "without_type_suffix": True, "without_units": True}
    return {"resource": {"service.name": service_name},
            "metrics": {"level": "normal", "readers": [{"pull": {"exporter": {"prometheus": prometheus}}}]},
            "logs": {"level": "info"}}


def collector_config(traces: Traces, store_endpoint: str = STORE_ENDPOINT) -> dict[str, Any]:
    """The Collector's configuration: OTLP in, memory limit then batching, OTLP/gRPC out to the store."""
    exporter = f"otlp_grpc/{TRACE_STORE_SERVICE}"
    return {
        "receivers": {"otlp": _otlp_receiver()},
        "processors": {
            # Checked every second; the soft limit is 80 % of the hard one (upstream's recommendation).
            "memory_limiter": {"check_interval": "1s", "limit_mib": traces.memory_limit_mib,
                               "spike_limit_mib": traces.memory_limit_mib // 5},
            "batch": {"timeout": _seconds(traces.batch_timeout), "send_batch_size": traces.batch_size},
        },
        # Plain gRPC on the kit's docker network (the store's port is not published on the host).
        "exporters": {exporter: {"endpoint": store_endpoint, "tls": {"insecure": True}}},
        "service": {
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"],
                                     "exporters": [exporter]}},
            "telemetry": _telemetry("otel-collector"),
        },
    }


def store_config(traces: Traces) -> dict[str, Any]:
    """Jaeger v2's configuration: OTLP in, badger on the data volume with the retention as TTL, query API."""
    directory = "/tmp/jaeger"  # the image's data volume (VOLUME /tmp, owned by its user)
    return {
        "receivers": {"otlp": _otlp_receiver()},
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": _STORAGE}},
        "extensions": {
            "jaeger_storage": {"backends": {_STORAGE: {"badger": {
                "directories": {"keys": f"{directory}/keys", "values": f"{directory}/values"},
                "ephemeral": False,
                "ttl": {"spans": _seconds(traces.store.retention)}}}}},
            "jaeger_query": {"storage": {"traces": _STORAGE},
                             "http": {"endpoint": f"{_LISTEN}:{TRACE_STORE_QUERY_PORT}"}},
        },
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"],
                                     "exporters": ["jaeger_storage_exporter"]}},
            "telemetry": _telemetry("jaeger"),
        },
    }


def configs(traces: Traces, store_endpoint: str = STORE_ENDPOINT) -> dict[str, dict[str, Any]]:
    """{file: configuration} of the Collector and the store, each checked; raises ConfigErrors."""
    rendered = {COLLECTOR_FILE: collector_config(traces, store_endpoint), STORE_FILE: store_config(traces)}
    errors: list[ConfigError] = []
    for path, config in rendered.items():
        errors += check_collector_config(config, OTLP_GRPC_PORT if path == COLLECTOR_FILE else None, path)
    if errors:
        raise ConfigErrors(errors)
    return rendered


def files(traces: Traces, store_endpoint: str = STORE_ENDPOINT) -> dict[str, str]:
    return {path: dump(config, HEADER) for path, config in configs(traces, store_endpoint).items()}


def artifacts(settings: Settings) -> dict[str, str]:
    """The lab's otel/ files (`llmobs generate`): what compose/services/otel-collector.yaml and jaeger.yaml mount."""
    return files(settings.otel.traces)


def vllm_args(traces: Traces, collector_address: str) -> list[str]:
    """The vLLM flags that send an engine's traces to the Collector at `collector_address` (host or IP):
    OTLP over gRPC, vLLM's default protocol (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL unset), without TLS."""
    args = ["--otlp-traces-endpoint", f"grpc://{collector_address}:{OTLP_GRPC_PORT}"]
    if traces.detailed_traces:
        # A list option of vLLM's argument parser (nargs="+"): one value per module.
        args += ["--collect-detailed-traces", *traces.detailed_traces]
    return args
