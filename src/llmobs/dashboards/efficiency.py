"""Efficiency and capacity: tokens per GPU and per joule, KV-cache and queue headroom, and, when a GPU
hourly price is set (setting `cost.gpu_hour_usd`), the cost per million generated tokens. Each panel is a
named function over the queries of `llmobs.dashboards.queries`; `build()` lays them out in rows."""

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
    constant_variable,
    stat_panel,
    timeseries_panel,
)
from llmobs.dashboards.queries import efficiency, engine, fleet, gpu
from llmobs.dashboards.queries.efficiency import PRICE_VARIABLE

ENGINE = "{{model_name}} @ {{instance}}"
DECLARED = f" It needs the engine's GPUs declared in the inventory (vllm_endpoints, which becomes {ENGINE_GPU_INFO})."


def _price(ctx: Context) -> float | None:
    return ctx.settings.cost.gpu_hour_usd


def variables(ctx: Context) -> list[dash.QueryVariable | dash.ConstantVariable]:
    """The hosts, and the GPU price as a constant the cost queries read (when it is set)."""
    found: list[dash.QueryVariable | dash.ConstantVariable] = [common.host_variable(ctx, gpu.HOST_GPUS)]
    if (price := _price(ctx)) is not None:
        found.append(constant_variable(PRICE_VARIABLE, f"{price:g}",
                                       "Price of one GPU for one hour (setting cost.gpu_hour_usd)."))
    return found


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


def cost_per_million_tokens(ctx: Context, price: float) -> stat.Panel:
    return stat_panel(
        "Cost per million tokens", f"GPU cost of a million generated tokens at {price:g} per GPU hour (setting"
        " cost.gpu_hour_usd), counting every reporting GPU, busy or not. Lower is better.", units.Dollars,
        [Target(efficiency.cost_per_million_tokens())], decimals=2, width=12)


def spend_per_hour(ctx: Context, price: float) -> stat.Panel:
    return stat_panel("GPU spend per hour", f"Hourly cost of the reporting GPUs at {price:g} per GPU hour.",
                      units.Dollars, [Target(efficiency.spend_per_hour())], decimals=2, width=12)


def fleet_panels(ctx: Context) -> list[stat.Panel]:
    found = [tokens_per_gpu(ctx), tokens_per_joule(ctx), energy_per_million_tokens(ctx), running_per_gpu(ctx)]
    if (price := _price(ctx)) is not None:
        found += [cost_per_million_tokens(ctx, price), spend_per_hour(ctx, price)]
    return found


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


def cost_by_host(ctx: Context, price: float) -> timeseries.Panel:
    return timeseries_panel(
        "Cost per million tokens by host", f"GPU cost of a million generated tokens on each host at {price:g} per"
        " GPU hour (setting cost.gpu_hour_usd).", units.Dollars,
        [Target(efficiency.cost_per_million_tokens_by_host(ctx.hosts, ctx.host), ctx.host_legend)],
        links=[common.gpu_link(ctx)], width=24)


def host_panels(ctx: Context) -> list[timeseries.Panel]:
    found = [tokens_per_gpu_by_host(ctx), tokens_per_joule_by_host(ctx), utilisation_by_host(ctx),
             power_by_host(ctx)]
    if (price := _price(ctx)) is not None:
        found.append(cost_by_host(ctx, price))
    return found


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
    priced = _price(ctx) is not None
    return (
        Board(common.EFFICIENCY_UID, "Efficiency and capacity",
              "How much useful work the GPUs do: generated tokens per second per GPU and per joule, energy and"
              + (" cost" if priced else "") + " per million tokens, and the headroom left in KV cache, queues and"
              " GPU time." + ("" if priced else " Set cost.gpu_hour_usd to add the cost per million tokens."),
              variables(ctx))
        .row("Fleet").add(*fleet_panels(ctx))
        .row("Per host").add(*host_panels(ctx))
        .row("Per engine").add(tokens_per_gpu_by_engine(ctx), tokens_per_joule_by_engine(ctx))
        .row("Capacity").add(kv_cache_headroom(ctx), queue_by_engine(ctx), load_by_model(ctx))
    )
