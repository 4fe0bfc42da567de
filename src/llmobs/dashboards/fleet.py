"""LLM fleet overview: is the fleet serving, how fast against its SLOs, and are its GPUs healthy.

Every panel reads recording rules (fleet:, model:, host:), so it stays fast on a large fleet; the GPU
fault counters read the per-GPU fault series once, summed to one number. Each panel is a named function
over the queries of `llmobs.dashboards.queries`; `build()` lays them out in rows.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models import units

from llmobs.dashboards import common
from llmobs.dashboards.context import Context
from llmobs.dashboards.panels import (
    BAD,
    GOOD,
    NEUTRAL,
    TOKENS_PER_SECOND,
    Board,
    Column,
    Steps,
    Target,
    merged_table_panel,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from llmobs.dashboards.queries import efficiency, engine, fleet, gpu

MODEL = "{{model_name}}"
ANY_FAULT = Steps.rising(None, 1)
# A click on a per-model series opens the model's vLLM dashboard.
TO_MODEL = (common.model_link(),)


# ------------------------------------------------------------------ traffic
def requests(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Requests/s", "Finished requests per second across the fleet, any finish reason"
        f" ({fleet.FLEET_REQUESTS}). Zero while traffic is expected means the engines stopped serving.",
        units.RequestsPerSecond, [Target(fleet.FLEET_REQUESTS)])


def error_ratio(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Engine error ratio", "Share of finished requests that failed inside the engine (finished_reason=error)"
        " across the fleet. Good: near 0." + ctx.alert_note(engine.ERROR_RATIO, "Colours (per-instance alerts)"),
        units.PercentUnit, [Target(fleet.error_ratio())], thresholds=ctx.alert_steps(engine.ERROR_RATIO), decimals=2)


def completed_normally(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Completed normally", "Share of finished requests that ended normally (stop, length or repetition: not"
        " failed, not aborted by the client). Good: close to 100 %.", units.PercentUnit,
        [Target(fleet.completed_ratio())], decimals=2)


def generated_tokens(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Generated tokens/s", f"Output tokens per second across the fleet ({fleet.FLEET_GENERATION_TOKENS}): the"
        " fleet's useful work.", TOKENS_PER_SECOND, [Target(fleet.FLEET_GENERATION_TOKENS)])


def prompt_tokens(ctx: Context) -> stat.Panel:
    return stat_panel("Prompt tokens/s", "Prompt (prefill) tokens per second across the fleet.", TOKENS_PER_SECOND,
                      [Target(fleet.FLEET_PROMPT_TOKENS)])


def running_and_waiting(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Running / waiting", "Requests in the running batches and in the queues across the fleet. A waiting"
        " count that stays above zero means the engines are saturated.", units.Short,
        [Target(fleet.FLEET_RUNNING, "running"), Target(fleet.FLEET_WAITING, "waiting")])


def requests_by_model(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Requests/s by model", f"Finished requests per second per model ({fleet.MODEL_REQUESTS}). Click a"
        " series to open the model's vLLM dashboard.", units.RequestsPerSecond,
        [Target(ctx.models.sel(fleet.MODEL_REQUESTS), MODEL)], links=TO_MODEL)


def finished_by_reason(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Finished requests by reason", "Finished requests per second by finish reason: stop and length are"
        " normal endings, abort means the client went away, error means the engine failed the request. Good:"
        " error stays at zero.", units.RequestsPerSecond,
        [Target(fleet.by_reason(ctx.models), "{{finished_reason}}")], stacked=True)


def error_ratio_by_model(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Engine error ratio by model", "Share of finished requests per model that failed inside the engine."
        + ctx.alert_note(engine.ERROR_RATIO, "Dashed lines (per-instance alerts)"), units.PercentUnit,
        [Target(ctx.models.sel(fleet.MODEL_ERROR_RATIO), MODEL)], thresholds=ctx.alert_steps(engine.ERROR_RATIO),
        min_value=0, links=TO_MODEL)


def completed_by_model(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Completed normally by model", "Share of finished requests per model that ended normally (not error,"
        " not abort). Good: close to 100 %; a drop with many aborts often means clients time out.",
        units.PercentUnit, [Target(ctx.models.sel(fleet.MODEL_SUCCESS_RATIO), MODEL)], min_value=0, max_value=1,
        links=TO_MODEL)


# ------------------------------------------------------------------ latency against the SLOs
def _slo_targets(ctx: Context, field: str) -> str:
    """Say which latency target the dashed line shows, and any per-model target that differs."""
    default = getattr(ctx.settings.slo.defaults, field)
    text = f"Dashed line: the SLO target {default:g} s (setting slo.defaults.{field})"
    others = [f"{model} {value:g} s" for model in sorted(ctx.settings.slo.models)
              if (value := getattr(ctx.settings.slo.targets_for(model), field)) != default]
    return text + (f"; per-model targets: {', '.join(others)}." if others else ".")


def _p95_latency(ctx: Context, histogram: str, title: str, description: str) -> timeseries.Panel:
    """The P95 of a latency histogram per model, against its SLO target where an SLO is set on it."""
    latency = ctx.latency_histogram(histogram)
    field = ctx.slo_target(latency)
    thresholds = Steps(GOOD, ((getattr(ctx.settings.slo.defaults, field), BAD),)) if field else NEUTRAL
    return timeseries_panel(
        title, description + (" Good: under the target. " + _slo_targets(ctx, field) if field else ""),
        units.Seconds, [Target(fleet.latency_percentile(ctx.models, latency, ctx.quantile(0.95)), MODEL)],
        thresholds=thresholds, links=TO_MODEL)


def ttft_p95(ctx: Context) -> timeseries.Panel:
    return _p95_latency(ctx, "vllm_time_to_first_token_seconds", "P95 time to first token by model", "95th"
                        " percentile of the time from a request's arrival to its first output token, per model,"
                        " over 5 minutes.")


def inter_token_p95(ctx: Context) -> timeseries.Panel:
    return _p95_latency(ctx, "vllm_inter_token_latency_seconds", "P95 inter-token latency by model", "95th"
                        " percentile of the time between two output tokens of a request, per model.")


def e2e_p95(ctx: Context) -> timeseries.Panel:
    return _p95_latency(ctx, "vllm_e2e_request_latency_seconds", "P95 end-to-end latency by model", "95th"
                        " percentile of the time from arrival to the last token, per model. It grows with the"
                        " output length, so compare it with the generation-length distribution on the vLLM"
                        " dashboard before calling it slow.")


def queue_time_p95(ctx: Context) -> timeseries.Panel:
    return _p95_latency(ctx, "vllm_request_queue_time_seconds", "P95 queue time by model", "95th percentile of"
                        " the time requests waited before the engine scheduled them. Good: close to zero; a"
                        " rising queue time is the first sign of an engine at capacity.")


# ------------------------------------------------------------------ tokens, queue and KV cache
def token_throughput(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Token throughput by model", "Prompt and generated tokens per second per model.", TOKENS_PER_SECOND,
        [Target(ctx.models.sel(fleet.MODEL_PROMPT_TOKENS), f"{MODEL} prompt"),
         Target(ctx.models.sel(fleet.MODEL_GENERATION_TOKENS), f"{MODEL} generated")], links=TO_MODEL)


def running_by_model(ctx: Context) -> timeseries.Panel:
    return timeseries_panel("Running requests by model", "Requests in the running batches per model.", units.Short,
                     [Target(ctx.models.sel(fleet.MODEL_RUNNING), MODEL)], min_value=0, links=TO_MODEL)


def deepest_queue(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Deepest queue by model", "Waiting requests of the most loaded instance of each model."
        + ctx.alert_note(engine.WAITING), units.Short, [Target(fleet.deepest_queue(ctx.models), MODEL)],
        thresholds=ctx.alert_steps(engine.WAITING), min_value=0, links=TO_MODEL)


def fullest_kv_cache(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "KV-cache usage, fullest instance by model", "Share of KV-cache blocks in use on the fullest instance"
        " of each model (old and new vLLM metric names). High usage alone is fine; with preemptions it means the"
        " cache is too small." + ctx.alert_note(engine.KV_CACHE_USAGE), units.PercentUnit,
        [Target(ctx.models.sel(fleet.MODEL_KV_CACHE_USAGE), MODEL)],
        thresholds=ctx.alert_steps(engine.KV_CACHE_USAGE), min_value=0, max_value=1, links=TO_MODEL)


def preemptions(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Preemptions/s, busiest instance by model", "Requests preempted per second for lack of KV cache on"
        " the busiest instance of each model. Good: zero. Dashed line: the preemption rate above which a full KV"
        f" cache alerts ({ctx.alert_name(engine.KV_CACHE_USAGE)}, thresholds.preemptions_per_second_warning).",
        units.OpsPerSecond, [Target(fleet.preemptions(ctx.models), MODEL)],
        thresholds=Steps.rising(ctx.settings.thresholds.preemptions_per_second_warning, None), min_value=0,
        links=TO_MODEL)


# ------------------------------------------------------------------ GPU health
def hosts_with_gpus(ctx: Context) -> stat.Panel:
    return stat_panel("Hosts with GPUs", "Servers whose dcgm-exporter reports at least one GPU.", units.Short,
                      [Target(gpu.hosts_with_gpus())])


def gpus_reporting(ctx: Context) -> stat.Panel:
    return stat_panel(
        "GPUs reporting", f"GPUs that report across the fleet ({gpu.FLEET_GPUS}). A drop means a GPU fell off the"
        " bus or an exporter is down.", units.Short, [Target(gpu.FLEET_GPUS)])


def hottest_gpu(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Hottest GPU", "Temperature of the hottest GPU of the fleet. What is too hot depends on the card: see the"
        " smallest thermal margin next to it.", units.Celsius, [Target(gpu.FLEET_HOTTEST)])


def smallest_margin(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Smallest thermal margin", "Degrees left before the nearest GPU reaches its own slowdown threshold."
        + ctx.alert_note(gpu.TEMP_MARGIN, "Colours"), units.Celsius, [Target(gpu.smallest_margin())],
        thresholds=ctx.alert_steps(gpu.TEMP_MARGIN))


def mean_utilisation(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Mean GPU utilisation", "Average GPU utilisation across the fleet. Near 100 % is normal for a busy"
        " inference fleet; near 0 % with traffic waiting is not.", units.Percent, [Target(gpu.FLEET_UTILIZATION)],
        min_value=0, max_value=100)


def gpu_power(ctx: Context) -> stat.Panel:
    return stat_panel("GPU power", "Power drawn by all GPUs of the fleet.", units.Watt, [Target(gpu.FLEET_POWER)])


def xid_errors(ctx: Context) -> stat.Panel:
    return stat_panel(
        "XID errors", "XID errors of all GPUs within dcgm-exporter's XID window (5 minutes by default;"
        f" {gpu.FLEET_XID_ERRORS}). Good: 0. The GPU dashboard names the GPU, the code and what it means.",
        units.Short, [Target(gpu.FLEET_XID_ERRORS)], thresholds=ANY_FAULT)


def uncorrectable_ecc(ctx: Context) -> stat.Panel:
    return stat_panel(
        "GPUs with uncorrectable ECC errors", "GPUs with double-bit (uncorrectable) ECC errors since the driver was"
        " loaded. Good: 0; any other value needs a GPU reset.", units.Short,
        [Target(gpu.gpus_with_uncorrectable_ecc(ctx.host))], thresholds=ANY_FAULT)


def row_remap_trouble(ctx: Context) -> stat.Panel:
    return stat_panel(
        "GPUs with row-remap trouble", "GPUs whose HBM row remapping failed or waits for a reset. Good: 0.",
        units.Short, [Target(gpu.gpus_with_row_remap_trouble(ctx.host))], thresholds=ANY_FAULT)


def firing_by_severity(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Firing alerts", "Alerts firing now, by severity. The always-firing Watchdog (the dead man's switch) is"
        " expected; anything else is listed below.", units.Short, [Target(fleet.firing_by_severity(), "{{severity}}")])


def hosts(ctx: Context) -> table.Panel:
    return merged_table_panel(
        "Hosts", "One row per server: GPUs, mean utilisation, power, the smallest thermal margin and the highest"
        " power-to-limit ratio of its GPUs (coloured where their alerts fire), and the tokens its engines"
        " generate. Click a host to open its GPU dashboard.", [
            Column(gpu.HOST_GPUS, "GPUs", units.Short),
            Column(gpu.HOST_UTILIZATION, "Utilisation", units.Percent),
            Column(gpu.HOST_POWER, "Power", units.Watt),
            Column(gpu.worst_per_host("min", gpu.TEMP_MARGIN, ctx.host), "Thermal margin", units.Celsius,
                   ctx.alert_steps(gpu.TEMP_MARGIN)),
            Column(gpu.worst_per_host("max", gpu.POWER_RATIO, ctx.host), "Power / limit", units.PercentUnit,
                   ctx.alert_steps(gpu.POWER_RATIO)),
            Column(efficiency.HOST_GENERATION_TOKENS, "Generated tokens/s", TOKENS_PER_SECOND),
        ], links=[common.gpu_link(ctx)], width=24, height=8)


# ------------------------------------------------------------------ alerts
def firing_alerts(ctx: Context) -> table.Panel:
    return table_panel(
        "Firing alerts", "Every alert firing now with its labels (host, GPU, model, severity). Good: only the"
        " Watchdog. Silences and routing are in Alertmanager.", units.Short, [Target(fleet.FIRING_ALERTS)],
        hide=("Time", "Value", "__name__", "alertstate"))


# ------------------------------------------------------------------ layout
def build(ctx: Context) -> Board:
    return (
        Board(common.FLEET_UID, "LLM fleet overview",
              "Requests, latency against the SLOs, tokens, queue and KV cache of every model, the health of every"
              " GPU and the alerts that fire. Click a model or a host to open its vLLM or GPU dashboard.",
              [common.model_variable(ctx, filter_by_host=False)])
        .row("Traffic").add(requests(ctx), error_ratio(ctx), completed_normally(ctx), generated_tokens(ctx),
                            prompt_tokens(ctx), running_and_waiting(ctx), requests_by_model(ctx),
                            finished_by_reason(ctx), error_ratio_by_model(ctx), completed_by_model(ctx))
        .row("Latency against the SLOs").add(ttft_p95(ctx), inter_token_p95(ctx), e2e_p95(ctx), queue_time_p95(ctx))
        .row("Tokens, queue and KV cache").add(token_throughput(ctx), running_by_model(ctx), deepest_queue(ctx),
                                               fullest_kv_cache(ctx), preemptions(ctx))
        .row("GPU health").add(hosts_with_gpus(ctx), gpus_reporting(ctx), hottest_gpu(ctx), smallest_margin(ctx),
                               mean_utilisation(ctx), gpu_power(ctx), xid_errors(ctx), uncorrectable_ecc(ctx),
                               row_remap_trouble(ctx), firing_by_severity(ctx), hosts(ctx))
        .row("Alerts").add(firing_alerts(ctx))
    )
