"""The kit's naming conventions, in one place (as Sloth's pkg/common/conventions): series and rule-group
names, rule files, scrape jobs and their ports, the lab's service ports and the runbook page of each alert.

No other module spells one of these names itself: the rule generators, the dashboards, the simulators,
the promtool tests and the deployment code read them from here. The catalog says *what* is measured
and alerted on; this module says what the results are called and where they are served.
"""

from __future__ import annotations

from typing import Literal

# ------------------------------------------------------------------------------------- series
# Info series the rule generators record besides the catalog's recording rules.
# {host, instance, model_name, inference_engine, gpus, gpu} 1 per GPU of each declared engine
ENGINE_GPU_INFO = "llmobs:engine_gpu:info"
XID_CLASS_INFO = "llmobs:xid_class:info"  # {xid, xid_class, xid_name, xid_action} 1 per catalogued XID
# Prices from the settings (cost), which the llmobs.cost recording rules read: per GPU model (label
# modelName, as DCGM reports it), per host and GPU model, for every other GPU; electricity per kWh.
GPU_HOUR_PRICE = "llmobs:gpu_hour_price:usd"  # {modelName}
HOST_GPU_HOUR_PRICE = "llmobs:host_gpu_hour_price:usd"  # {host, modelName}
DEFAULT_GPU_HOUR_PRICE = "llmobs:default_gpu_hour_price:usd"  # {}
ELECTRICITY_PRICE = "llmobs:electricity_price:usd_per_kwh"  # {}
HOST_ELECTRICITY_PRICE = "llmobs:host_electricity_price:usd_per_kwh"  # {host}
PRICE_SERIES = (GPU_HOUR_PRICE, HOST_GPU_HOUR_PRICE, DEFAULT_GPU_HOUR_PRICE, ELECTRICITY_PRICE, HOST_ELECTRICITY_PRICE)

# The endpoint prober's series (llmobs.prober), each labelled {<host>, endpoint, model_name, inference_engine}:
# what a client of the endpoint sees, probed from the monitoring host with a small streamed chat completion.
PROBE_SUCCESS = "llmobs_probe_success"                    # 1: the last probe got a well-formed answer
PROBE_HTTP_STATUS = "llmobs_probe_http_status"            # the last probe's HTTP status, 0 without an answer
PROBE_TTFT = "llmobs_probe_time_to_first_token_seconds"   # histogram: request sent -> first content chunk
PROBE_INTER_CHUNK = "llmobs_probe_inter_chunk_seconds"    # histogram: gaps between content chunks
PROBE_DURATION = "llmobs_probe_duration_seconds"          # the last probe's total time
PROBE_TOKENS = "llmobs_probe_tokens_received"             # tokens of the last probe's answer
PROBE_WELL_FORMED = "llmobs_probe_answer_well_formed"     # 1: the last answer was a well-formed SSE stream
PROBES = "llmobs_probes_total"                            # counter, label `result` (PROBE_RESULTS)
PROBE_RESULTS = ("ok", "http_error", "unauthorized", "unreachable", "timeout", "malformed", "no_key")
# The TTFT target of each probed model (its slo ttft_seconds), {model_name}: the prober's TTFT alert reads it.
PROBE_TTFT_TARGET = "llmobs:probe_ttft_target:seconds"

# SLO series, Sloth's names: the error ratio per window, the meta series of each SLO.
SLO_OBJECTIVE = "slo:objective:ratio"
SLO_ERROR_BUDGET = "slo:error_budget:ratio"
SLO_CURRENT_BURN_RATE = "slo:current_burn_rate:ratio"
SLO_PERIOD_BURN_RATE = "slo:period_burn_rate:ratio"
SLO_PERIOD_BUDGET_REMAINING = "slo:period_error_budget_remaining:ratio"
SLO_META_SERIES = (SLO_OBJECTIVE, SLO_ERROR_BUDGET, SLO_CURRENT_BURN_RATE, SLO_PERIOD_BURN_RATE,
                   SLO_PERIOD_BUDGET_REMAINING)


# Per SLO and model, the 5-minute rates of the SLI's bad and total events (requests, or output tokens for the
# inter-token SLO): every longer window is the ratio of their sums over it, weighted by the events.
SLI_EVENTS_WINDOW = "5m"
SLI_BAD_EVENTS = f"slo:sli_bad_events:rate{SLI_EVENTS_WINDOW}"
SLI_EVENTS = f"slo:sli_events:rate{SLI_EVENTS_WINDOW}"


def sli_error_ratio(window: str) -> str:
    """The SLI error ratio over `window` (`5m`, `1h`, ... or the SLO period)."""
    return f"slo:sli_error:ratio_rate{window}"


def slo_series(windows: tuple[str, ...] | list[str], period: str) -> list[str]:
    """Every `slo:*` series the SLO rules record for the SLI windows and the SLO period."""
    return [SLI_BAD_EVENTS, SLI_EVENTS, *(sli_error_ratio(window) for window in (*windows, period)),
            *SLO_META_SERIES]


# Latency recording rules: per histogram of the catalog, bucket rates and quantiles at two levels.
LatencyLevel = Literal["instance_model", "model"]
LATENCY_LEVELS: tuple[LatencyLevel, ...] = ("instance_model", "model")


def latency_buckets(histogram: str, level: LatencyLevel) -> str:
    """Bucket rates of a latency histogram, e.g. `model_le:vllm_e2e_request_latency_seconds_bucket:rate5m`."""
    return f"{level}_le:{histogram}_bucket:rate5m"


def latency_quantile(histogram: str, level: LatencyLevel) -> str:
    """Quantiles (label `quantile`) of a latency histogram, e.g. `model:<histogram>:histogram_quantile5m`."""
    return f"{level}:{histogram}:histogram_quantile5m"


# -------------------------------------------------------------------------------- rule groups and files
RULES_DIR = "prometheus/rules"
TESTS_DIR = "prometheus/tests"
RECORDING_FILE, SLO_FILE, INVENTORY_FILE, ALERTS_FILE = "recording.yml", "slo.yml", "inventory.yml", "alerts.yml"
PRICES_FILE = "prices.yml"

# Prefixes of the histogram groups, one group per histogram: `<prefix>.<histogram name>` (llmobs.rules.recording)
LATENCY_GROUP = "llmobs.vllm.latency"
REQUEST_GROUP = "llmobs.vllm.requests"  # vLLM's request phase and length histograms
ENGINE_GROUP = "llmobs.engine"  # the engine-agnostic layer, one rule per signal and engine
XID_CLASSES_GROUP = "llmobs.xid-classes"
INVENTORY_GROUP = "llmobs.inventory"
PROBE_TARGETS_GROUP = "llmobs.probe-targets"  # the TTFT target of each probed model (PROBE_TTFT_TARGET)
PRICES_GROUP = "llmobs.prices"
GENAI_GROUP = "llmobs.genai"  # applications' OpenTelemetry GenAI metrics, pushed over OTLP


def alert_group(page: str) -> str:
    """The rule group of an alert family (one per runbook page)."""
    return f"llmobs.alerts.{page}"


def slo_sli_group(slo: str) -> str:
    return f"llmobs.slo.{slo}.sli"


def slo_meta_group(slo: str) -> str:
    return f"llmobs.slo.{slo}.meta"


# ---------------------------------------------------------------------------------- runbook pages
RUNBOOKS_DIR = "docs/runbooks"
SLO_BURN_PAGE = "slo-burn"  # the page of every SLO burn-rate alert (the alert families name their own)


def runbook_url(base_url: str, page: str, alert: str) -> str:
    """runbook_url = <base>/<page>.md#<alert>: the section of the alert on its family's page."""
    return f"{base_url.rstrip('/')}/{page}.md#{alert.lower()}"


# ------------------------------------------------------------------------------------ engines
# The inference engines an endpoint can run (src/llmobs/catalog/engines.yaml describes each).
Engine = Literal["vllm", "sglang", "trtllm", "llamacpp"]
ENGINES: tuple[Engine, ...] = ("vllm", "sglang", "trtllm", "llamacpp")

# ------------------------------------------------------------------------------- jobs and ports
# The scrape jobs (keys of the `jobs` settings, whose values are the job names), in prometheus.yml order:
# one job per engine, so each is scraped at its own metrics path and its rules select it by job.
Job = Literal["node", "dcgm", "vllm", "sglang", "trtllm", "llamacpp", "prometheus", "alertmanager", "grafana",
              "prober", "otelcol"]
# Targets of a host's exporters (prober: the endpoint prober of the monitoring host, llmobs.prober; otelcol: the
# OpenTelemetry Collector's own metrics, where the site collects traces, llmobs.tracing).
ExporterJob = Literal["node", "dcgm", "prometheus", "alertmanager", "grafana", "prober", "otelcol"]
JOB_ORDER: tuple[Job, ...] = ("prometheus", "alertmanager", "grafana", "node", "dcgm", *ENGINES, "prober", "otelcol")

# The port each job's target listens on unless a host says otherwise (engines: each endpoint may name its own;
# these are the engines' own defaults, src/llmobs/catalog/engines.yaml).
PORTS: dict[Job, int] = {"node": 9100, "dcgm": 9400, "vllm": 8000, "sglang": 30000, "trtllm": 8000, "llamacpp": 8080,
                         "prometheus": 9090, "alertmanager": 9093, "grafana": 3000, "prober": 9469, "otelcol": 8888}
EXPORTER_PORTS: dict[ExporterJob, int] = {job: port for job, port in PORTS.items()  # type: ignore[misc]
                                          if job not in ENGINES}

# The compose service of each job on the kit's docker network (compose/services/<name>.yaml).
COMPOSE_SERVICES: dict[ExporterJob, str] = {"node": "node-exporter", "dcgm": "dcgm-exporter",
                                            "prometheus": "prometheus", "alertmanager": "alertmanager",
                                            "grafana": "grafana", "prober": "endpoint-prober",
                                            "otelcol": "otel-collector"}

# The lab's own services: the simulators' fault-injection (control) port and the alert sink.
SIM_CONTROL_PORT = 9401
ALERT_SINK_PORT = 9095
ALERT_SINK_SERVICE = "alert-sink"


def instance(address: str, port: int) -> str:
    """A scrape target's `instance` label: address:port."""
    return f"{address}:{port}"


# -------------------------------------------------------------------------------- OpenTelemetry
# How Prometheus names what applications push over OTLP (prometheus.yml `otlp.translation_strategy`): dots to
# underscores, unit and type suffixes added. The GenAI recording rules read these names.
OTLP_TRANSLATION_STRATEGY = "UnderscoreEscapingWithSuffixes"
OTLP_METRICS_PATH = "/api/v1/otlp/v1/metrics"

# Traces (llmobs.tracing): the Collector's compose service and ports (OTLP in, its own metrics out), and
# the trace store's (Jaeger v2: OTLP in from the Collector, the query API and UI Grafana reads).
COLLECTOR_SERVICE = COMPOSE_SERVICES["otelcol"]
TRACE_STORE_SERVICE = "jaeger"
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
COLLECTOR_METRICS_PORT = PORTS["otelcol"]
TRACE_STORE_QUERY_PORT = 16686
TRACE_STORE_URL = f"http://{TRACE_STORE_SERVICE}:{TRACE_STORE_QUERY_PORT}"  # as Grafana reaches it by name
# Resource attributes that identify an application (OpenTelemetry's service.*): Prometheus 3.5 makes job and
# instance of them, and keeps them as labels only where promoted; the GenAI rules group by service_name.
OTLP_IDENTIFYING_ATTRIBUTES = ("service.name", "service.namespace", "service.instance.id")
# The OTLP gateway for a Prometheus without the receiver (compose/services/otlp-gateway.yaml): vmagent, which
# takes OTLP/HTTP at this path and remote-writes to Prometheus' /api/v1/write.
OTLP_GATEWAY_SERVICE = "otlp-gateway"
OTLP_GATEWAY_PORT = 8429
OTLP_GATEWAY_METRICS_PATH = "/opentelemetry/v1/metrics"
