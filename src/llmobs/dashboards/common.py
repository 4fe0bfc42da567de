"""What several dashboards share: their uids, the `host`, `gpu`, `model_name` and `instance` variables,
and the data links from a series or a table row to another dashboard."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from llmobs.dashboards.context import Context
from llmobs.dashboards.panels import Link, query_variable
from llmobs.dashboards.queries import fleet
from llmobs.promql import variable

# Dashboard uids, shared by the links between dashboards.
FLEET_UID = "llmobs-fleet"
VLLM_UID = "llmobs-vllm"
GPU_UID = "llmobs-gpu-node"
SLO_UID = "llmobs-slo"
EFFICIENCY_UID = "llmobs-efficiency"

# The series the variables read their values from: a vLLM gauge every engine exposes with model_name
# (node_exporter has a model_name label too), and a DCGM field every GPU reports.
ENGINE_SERIES = "vllm:num_requests_running"
GPU_SERIES = "DCGM_FI_DEV_GPU_TEMP"


# ------------------------------------------------------------------ variables
def host_variable(ctx: Context, metric: str) -> dash.QueryVariable:
    return query_variable(
        "host", "Host", f"label_values({metric}, {ctx.host})",
        f"Servers (target label `{ctx.host}`) that expose {metric}.")


def gpu_variable(ctx: Context) -> dash.QueryVariable:
    return query_variable(
        "gpu", "GPU", f"label_values({ctx.hosts.sel(GPU_SERIES)}, gpu)",
        "GPU index (nvidia-smi order) on the selected hosts.")


def model_variable(ctx: Context, filter_by_host: bool = True) -> dash.QueryVariable:
    """Served model names, read from a vLLM series of the selected hosts, or fleet-wide from the per-model
    recording rule, which stays cheap on a large fleet."""
    series = ctx.hosts.sel(ENGINE_SERIES) if filter_by_host else fleet.MODEL_RUNNING
    return query_variable("model_name", "Model", f"label_values({series}, model_name)",
                          "Served model name (vLLM --served-model-name).")


def instance_variable(ctx: Context) -> dash.QueryVariable:
    return query_variable(
        "instance", "Instance", f"label_values({ctx.hosts.sel(ENGINE_SERIES, variable('model_name'))}, instance)",
        "vLLM server (scrape target) serving the selected models.")


# ------------------------------------------------------------------ links
def gpu_link(ctx: Context) -> Link:
    return Link("GPU node: ${__field.labels." + ctx.host + "}", GPU_UID, {"host": ctx.host})


def engine_link(ctx: Context) -> Link:
    return Link("vLLM serving: ${__field.labels.model_name}", VLLM_UID,
                {"host": ctx.host, "model_name": "model_name", "instance": "instance"})


def model_link() -> Link:
    return Link("vLLM serving: ${__field.labels.model_name}", VLLM_UID, {"model_name": "model_name"})
