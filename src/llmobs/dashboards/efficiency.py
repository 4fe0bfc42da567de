"""Efficiency and capacity: tokens per GPU, per joule and per kWh, idle GPUs, KV-cache and queue headroom,
and, when the settings price any GPU (setting `cost`), cost per hour and per million generated tokens from
the llmobs.cost recording rules (each GPU model, site and host at its own price). Each panel is a named
function over the queries of `llmobs.dashboards.queries`; `build()` lays them out in rows."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.models import units

from llmobs.conventions import ENGINE_GPU_INFO
from llmobs.dashboards import common
from llmobs.dashboards.context import Context
from llmobs.dashboards.panels import (
    TOKENS_PER_JOULE,
    TOKENS_PER_SECOND,
    Board,
    Steps,
    Target,
    stat_panel,
    timeseries_panel,
)
from llmobs.dashboards.queries import efficiency, engine, fleet, gpu

ENGINE = "{{model_name}} @ {{instance}}"
MODEL = "{{model_name}}"
APPLICATION = "{{service_name}} → {{model_name}}"
OTLP_NOTE = (" From the OpenTelemetry GenAI metrics the applications push to Prometheus over OTLP"
             " (service_name: the resource attribute service.name; model: the requested model).")
TOKENS_PER_KWH = "count:tok/kWh"
COST_NOTE = (" Each GPU at its price (setting cost: per GPU model, site and host, purchase prices amortised)"
             " plus its energy at the electricity price.")
DECLARED = f" It needs the engine's GPUs declared in the inventory (vllm_endpoints, which becomes {ENGINE_GPU_INFO})."


def _priced(ctx: Context) -> bool:
    return ctx.settings.cost.priced


def variables(ctx: Context) -> list[dash.QueryVariable]:
    return [common.host_variable(ctx, gpu.HOST_GPUS)]


def _per_host(ctx: Context, series: str) -> list[Target]:
    return [Target(ctx.hosts.sel(series), ctx.host_legend)]


# ------------------------------------------------------------------ fleet
def tokens_per_gpu(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Generated tokens/s per GPU", "Output tokens per second per reporting GPU across the fleet"
        f" ({efficiency.FLEET_TOKENS_PER_GPU}). Higher is better for the same latency.", TOKENS_PER_SECOND,
        [Target(efficiency.FLEET_TOKENS_PER_GPU)], width=6)


def tokens_per_joule(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Tokens per joule", "Output tokens per joule of GPU energy across the fleet, from the energy counters."
        " Higher is better; batching and a warm prefix cache raise it.", TOKENS_PER_JOULE,
        [Target(efficiency.FLEET_TOKENS_PER_JOULE)], decimals=2, width=6)


def energy_per_million_tokens(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Energy per million tokens", "GPU energy spent per million generated tokens (the inverse of tokens per"
        " joule). Lower is better.", units.KiloWattHour, [Target(efficiency.energy_per_million_tokens())],
        decimals=3, width=6)


def running_per_gpu(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Running requests per GPU", "Requests in the running batches per reporting GPU: how much concurrency each"
        " GPU carries.", units.Short, [Target(efficiency.running_per_gpu())], decimals=1, width=6)


def cost_per_million_tokens(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Cost per million tokens", "GPU cost of a million generated tokens across the fleet, counting every"
        f" reporting GPU, busy or not ({efficiency.FLEET_COST_PER_MILLION_TOKENS}). Lower is better." + COST_NOTE,
        units.Dollars, [Target(efficiency.FLEET_COST_PER_MILLION_TOKENS)], decimals=2, width=6)


def spend_per_hour(ctx: Context) -> stat.Panel:
    return stat_panel("GPU spend per hour", f"Hourly cost of the reporting GPUs ({efficiency.FLEET_COST_PER_HOUR})."
                      + COST_NOTE, units.Dollars, [Target(efficiency.FLEET_COST_PER_HOUR)], decimals=2, width=6)


def idle_gpu_cost(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Idle GPU spend per hour", "Hourly cost of the GPUs allocated to an engine that generated nothing in the last"
        " 5 minutes." + DECLARED, units.Dollars, [Target(efficiency.FLEET_IDLE_GPU_COST)], decimals=2, width=6)


def idle_gpus(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Idle allocated GPUs", "GPUs allocated to an engine that generated nothing in the last 5 minutes, now and"
        " in GPU-hours over the last day." + DECLARED, units.Short,
        [Target(efficiency.FLEET_IDLE_GPUS, "now"), Target(efficiency.FLEET_IDLE_GPU_HOURS, "GPU-hours, 1d")],
        decimals=1, width=6)


def fleet_panels(ctx: Context) -> list[stat.Panel]:
    found = [tokens_per_gpu(ctx), tokens_per_joule(ctx), energy_per_million_tokens(ctx), running_per_gpu(ctx)]
    if _priced(ctx):
        found += [cost_per_million_tokens(ctx), spend_per_hour(ctx), idle_gpu_cost(ctx)]
    return [*found, idle_gpus(ctx)]


# ------------------------------------------------------------------ per host
def tokens_per_gpu_by_host(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Generated tokens/s per GPU by host", "Output tokens per second per GPU of each host. Hosts well below the"
        " others with the same model are worth a look.", TOKENS_PER_SECOND,
        _per_host(ctx, efficiency.HOST_TOKENS_PER_GPU), links=[common.gpu_link(ctx)])


def tokens_per_joule_by_host(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Tokens per joule by host", "Output tokens per joule of GPU energy on each host.", TOKENS_PER_JOULE,
        _per_host(ctx, efficiency.HOST_TOKENS_PER_JOULE), links=[common.gpu_link(ctx)])


def utilisation_by_host(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "GPU utilisation by host", "Mean GPU utilisation of each host. With low tokens per GPU, high utilisation"
        " points at small batches or long prompts; low utilisation at too little traffic.", units.Percent,
        _per_host(ctx, gpu.HOST_UTILIZATION), min_value=0, max_value=100, links=[common.gpu_link(ctx)])


def power_by_host(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "GPU power by host", "Power drawn by the GPUs of each host, from their energy counters.", units.Watt,
        _per_host(ctx, gpu.HOST_ENERGY_RATE), links=[common.gpu_link(ctx)])


def cost_by_host(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Cost per million tokens by host", "GPU cost of a million generated tokens on each host, counting all its"
        " GPUs." + COST_NOTE, units.Dollars,
        [Target(ctx.hosts.sel(efficiency.HOST_COST_PER_MILLION_TOKENS), ctx.host_legend)],
        links=[common.gpu_link(ctx)], width=24)


def host_panels(ctx: Context) -> list[timeseries.Panel]:
    found = [tokens_per_gpu_by_host(ctx), tokens_per_joule_by_host(ctx), utilisation_by_host(ctx),
             power_by_host(ctx)]
    if _priced(ctx):
        found.append(cost_by_host(ctx))
    return found


# ------------------------------------------------------------------ per model
def cost_per_million_tokens_by_model(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Cost per million tokens by model", "GPU cost of a million generated tokens of each model, from the GPUs"
        f" its engines run on ({efficiency.MODEL_COST_PER_MILLION_TOKENS})." + COST_NOTE + DECLARED, units.Dollars,
        [Target(efficiency.MODEL_COST_PER_MILLION_TOKENS, MODEL)], links=[common.model_link()])


def cost_per_hour_by_model(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Cost per hour by model", "Hourly cost of the GPUs each model's engines run on." + COST_NOTE + DECLARED,
        units.Dollars, [Target(efficiency.MODEL_COST_PER_HOUR, MODEL)], links=[common.model_link()])


def tokens_per_kwh_by_model(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Tokens per kWh by model", "Generated tokens per kWh of the energy of each model's GPUs. Higher is better."
        + DECLARED, TOKENS_PER_KWH, [Target(efficiency.MODEL_TOKENS_PER_KWH, MODEL),
                                     Target(efficiency.FLEET_TOKENS_PER_KWH, "fleet")], links=[common.model_link()])


def idle_gpu_hours_by_model(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Idle GPU-hours by model (1d)", "GPU-hours of the last day each model's GPUs were allocated to an engine that"
        " generated nothing." + DECLARED, units.Short, [Target(efficiency.MODEL_IDLE_GPU_HOURS, MODEL)],
        min_value=0, links=[common.model_link()])


def model_panels(ctx: Context) -> list[timeseries.Panel]:
    found = [cost_per_million_tokens_by_model(ctx), cost_per_hour_by_model(ctx)] if _priced(ctx) else []
    return [*found, tokens_per_kwh_by_model(ctx), idle_gpu_hours_by_model(ctx)]


# ------------------------------------------------------------------ per engine
def tokens_per_gpu_by_engine(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Generated tokens/s per GPU by engine", "Output tokens per second per GPU of each vLLM engine: compare"
        " engines of the same model across hosts and GPU types." + DECLARED, TOKENS_PER_SECOND,
        [Target(ctx.hosts.sel(efficiency.ENGINE_TOKENS_PER_GPU), ENGINE)], links=[common.engine_link(ctx)])


def tokens_per_joule_by_engine(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Tokens per joule by engine", "Output tokens per joule of the energy of each engine's GPUs. Higher is"
        " better." + DECLARED, TOKENS_PER_JOULE,
        [Target(ctx.hosts.sel(efficiency.ENGINE_TOKENS_PER_JOULE), ENGINE)], links=[common.engine_link(ctx)])


# ------------------------------------------------------------------ applications (OpenTelemetry)
def tokens_by_application(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Tokens/s by application and model", "Tokens per second each application sends (input) and receives"
        " (output) per model." + OTLP_NOTE, TOKENS_PER_SECOND,
        [Target(efficiency.APP_MODEL_TOKENS, f"{APPLICATION} {{{{gen_ai_token_type}}}}")], min_value=0, width=8)


def call_duration_by_application(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Model-call duration by application (P50, P95)", "How long each application waits for a model, as the"
        " client sees it: the network, proxies and queues in front of the engine included." + OTLP_NOTE,
        units.Seconds, [Target(efficiency.app_call_duration(q), f"P{float(q) * 100:g} {APPLICATION}")
                        for q in ("0.5", "0.95")], min_value=0, width=8)


def call_errors_by_application(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Failed model calls by application", "Share of each application's model calls that failed (error.type"
        " set)." + OTLP_NOTE, units.PercentUnit, [Target(efficiency.APP_MODEL_CALL_ERRORS, APPLICATION)],
        min_value=0, width=8)


def cost_by_application(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "GPU cost per hour by application", "What each application's use of the fleet's models costs per hour:"
        " its generated tokens at the model's cost per million tokens. Calls to models the fleet does not serve"
        " cost nothing here." + COST_NOTE + OTLP_NOTE, units.Dollars,
        [Target(efficiency.APP_MODEL_COST_PER_HOUR, APPLICATION), Target(efficiency.APP_COST_PER_HOUR,
                                                                         "{{service_name}}")],
        min_value=0, width=24)


def application_panels(ctx: Context) -> list[timeseries.Panel]:
    found = [tokens_by_application(ctx), call_duration_by_application(ctx), call_errors_by_application(ctx)]
    return [*found, cost_by_application(ctx)] if _priced(ctx) else found


# ------------------------------------------------------------------ capacity
def kv_cache_headroom(ctx: Context) -> timeseries.Panel:
    # Headroom is 1 - usage: the KV-cache alert's threshold mirrored.
    headroom = Steps.falling(round(1 - ctx.settings.thresholds.kv_cache_usage_warning, 6), None)
    return timeseries_panel(
        "KV-cache headroom by engine", "Share of KV-cache blocks still free on each engine of the selected hosts."
        " Dashed line: where the KV-cache alert starts (1 - thresholds.kv_cache_usage_warning). Little headroom"
        " with preemptions means the engine needs more memory or fewer concurrent requests.", units.PercentUnit,
        [Target(efficiency.headroom(ctx.hosts, engine.KV_CACHE_USAGE), ENGINE)], thresholds=headroom, min_value=0,
        max_value=1, links=[common.engine_link(ctx)], width=8)


def queue_by_engine(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Queue headroom by engine", "Requests waiting for capacity on each engine of the selected hosts. A queue"
        " that never empties means the engine is at capacity." + ctx.alert_note(engine.WAITING), units.Short,
        [Target(ctx.hosts.sel(engine.WAITING), ENGINE)], thresholds=ctx.alert_steps(engine.WAITING), min_value=0,
        links=[common.engine_link(ctx)], width=8)


def load_by_model(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Load by model", "Running and waiting requests per model across the fleet: capacity is short where waiting"
        " stays above zero.", units.Short,
        [Target(fleet.MODEL_RUNNING, "running {{model_name}}"), Target(fleet.MODEL_WAITING, "waiting {{model_name}}")],
        min_value=0, links=[common.model_link()], width=8)


# ------------------------------------------------------------------ layout
def build(ctx: Context) -> Board:
    priced = _priced(ctx)
    return (
        Board(common.EFFICIENCY_UID, "Efficiency and capacity",
              "How much useful work the GPUs do: generated tokens per second per GPU and per joule, energy and"
              + (" cost" if priced else "") + " per million tokens, and the headroom left in KV cache, queues and"
              " GPU time." + ("" if priced else " Price the GPUs (setting cost) to add the cost per hour and per"
                              " million tokens."),
              variables(ctx))
        .row("Fleet").add(*fleet_panels(ctx))
        .row("Per host").add(*host_panels(ctx))
        .row("Per model").add(*model_panels(ctx))
        .row("Per engine").add(tokens_per_gpu_by_engine(ctx), tokens_per_joule_by_engine(ctx))
        .row("Capacity").add(kv_cache_headroom(ctx), queue_by_engine(ctx), load_by_model(ctx))
        .row("Applications (OpenTelemetry)").add(*application_panels(ctx))
    )
