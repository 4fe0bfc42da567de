"""Efficiency and capacity: tokens per GPU and per joule, KV-cache and queue headroom, and, when a GPU
hourly price is set (setting `cost.gpu_hour_usd`), the cost per million generated tokens."""

from __future__ import annotations

from grafana_foundation_sdk.models import units

from llmobs.dashboards.context import EFFICIENCY_UID, Context
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

PRICE_VARIABLE = "gpu_hour_usd"


def build(ctx: Context) -> Board:
    t = ctx.settings.thresholds
    price = ctx.settings.cost.gpu_hour_usd
    h = ctx.host
    variables = [ctx.host_variable("host:dcgm_gpus:count")]
    if price is not None:
        variables.append(constant_variable(PRICE_VARIABLE, f"{price:g}",
                                           "Price of one GPU for one hour (setting cost.gpu_hour_usd)."))
    board = Board(
        EFFICIENCY_UID, "Efficiency and capacity",
        "How much useful work the GPUs do: generated tokens per second per GPU and per joule, energy and"
        + (" cost" if price is not None else "") + " per million tokens, and the headroom left in KV cache,"
        " queues and GPU time." + ("" if price is not None else
                                   " Set cost.gpu_hour_usd to add the cost per million tokens."),
        variables,
    )
    host_sel = f'{h}=~"$host"'

    board.row("Fleet")
    board.add(
        stat_panel("Generated tokens/s per GPU", "Output tokens per second per reporting GPU across the fleet"
                   " (fleet:vllm_generation_tokens_per_gpu:rate5m). Higher is better for the same latency.",
                   TOKENS_PER_SECOND, [Target("fleet:vllm_generation_tokens_per_gpu:rate5m")], width=6),
        stat_panel("Tokens per joule", "Output tokens per joule of GPU energy across the fleet, from the"
                   " energy counters. Higher is better; batching and a warm prefix cache raise it.",
                   TOKENS_PER_JOULE, [Target("fleet:vllm_generation_tokens_per_joule:ratio_rate5m")],
                   decimals=2, width=6),
        stat_panel("Energy per million tokens", "GPU energy spent per million generated tokens (the inverse of"
                   " tokens per joule). Lower is better.", units.KiloWattHour,
                   [Target("1 / fleet:vllm_generation_tokens_per_joule:ratio_rate5m / 3.6")], decimals=3, width=6),
        stat_panel("Running requests per GPU", "Requests in the running batches per reporting GPU: how much"
                   " concurrency each GPU carries.", units.Short,
                   [Target("fleet:vllm_requests_running:sum / fleet:dcgm_gpus:count")], decimals=1, width=6),
    )
    if price is not None:
        cost = f"${PRICE_VARIABLE} * 1e6 / 3600"
        board.add(
            stat_panel("Cost per million tokens", f"GPU cost of a million generated tokens at {price:g} per GPU"
                       " hour (setting cost.gpu_hour_usd), counting every reporting GPU, busy or not. Lower is"
                       " better.", units.Dollars,
                       [Target(f"{cost} * fleet:dcgm_gpus:count / (fleet:vllm_generation_tokens:rate5m > 0)")],
                       decimals=2, width=12),
            stat_panel("GPU spend per hour", f"Hourly cost of the reporting GPUs at {price:g} per GPU hour.",
                       units.Dollars, [Target(f"${PRICE_VARIABLE} * fleet:dcgm_gpus:count")], decimals=2,
                       width=12),
        )

    board.row("Per host")
    board.add(
        timeseries_panel("Generated tokens/s per GPU by host", "Output tokens per second per GPU of each host."
                         " Hosts well below the others with the same model are worth a look.", TOKENS_PER_SECOND,
                         [Target(f"host:vllm_generation_tokens_per_gpu:rate5m{{{host_sel}}}", f"{{{{{h}}}}}")],
                         links=[ctx.gpu_link()]),
        timeseries_panel("Tokens per joule by host", "Output tokens per joule of GPU energy on each host.",
                         TOKENS_PER_JOULE,
                         [Target(f"host:vllm_generation_tokens_per_joule:ratio_rate5m{{{host_sel}}}", f"{{{{{h}}}}}")],
                         links=[ctx.gpu_link()]),
        timeseries_panel("GPU utilisation by host", "Mean GPU utilisation of each host. With low tokens per GPU,"
                         " high utilisation points at small batches or long prompts; low utilisation at too"
                         " little traffic.", units.Percent,
                         [Target(f"host:dcgm_gpu_utilization:avg{{{host_sel}}}", f"{{{{{h}}}}}")],
                         min_value=0, max_value=100, links=[ctx.gpu_link()]),
        timeseries_panel("GPU power by host", "Power drawn by the GPUs of each host, from their energy"
                         " counters.", units.Watt,
                         [Target(f"host:dcgm_energy_joules:rate5m{{{host_sel}}}", f"{{{{{h}}}}}")],
                         links=[ctx.gpu_link()]),
    )
    if price is not None:
        board.add(timeseries_panel(
            "Cost per million tokens by host", f"GPU cost of a million generated tokens on each host at {price:g}"
            " per GPU hour (setting cost.gpu_hour_usd).", units.Dollars,
            [Target(f"${PRICE_VARIABLE} * 1e6 / 3600 * host:dcgm_gpus:count{{{host_sel}}}"
                    f" / on ({h}) (host:vllm_generation_tokens:rate5m{{{host_sel}}} > 0)", f"{{{{{h}}}}}")],
            links=[ctx.gpu_link()], width=24))

    board.row("Per engine")
    declared = (" It needs the engine's GPUs declared in the inventory (vllm_endpoints, which becomes"
                " llmobs:engine_gpu:info).")
    board.add(
        timeseries_panel("Generated tokens/s per GPU by engine", "Output tokens per second per GPU of each vLLM"
                         " engine: compare engines of the same model across hosts and GPU types." + declared,
                         TOKENS_PER_SECOND,
                         [Target(f"instance_model:vllm_generation_tokens_per_gpu:rate5m{{{host_sel}}}",
                                 "{{model_name}} @ {{instance}}")], links=[ctx.engine_link()]),
        timeseries_panel("Tokens per joule by engine", "Output tokens per joule of the energy of each engine's"
                         " GPUs. Higher is better." + declared, TOKENS_PER_JOULE,
                         [Target(f"instance_model:vllm_generation_tokens_per_joule:ratio_rate5m{{{host_sel}}}",
                                 "{{model_name}} @ {{instance}}")], links=[ctx.engine_link()]),
    )

    board.row("Capacity")
    waiting = "instance_model:vllm_requests_waiting:sum"
    # Headroom is 1 - usage: the KV-cache alert's threshold mirrored.
    headroom = Steps.falling(round(1 - t.kv_cache_usage_warning, 6), None)
    board.add(
        timeseries_panel("KV-cache headroom by engine", "Share of KV-cache blocks still free on each engine of"
                         " the selected hosts. Dashed line: where the KV-cache alert starts"
                         " (1 - thresholds.kv_cache_usage_warning). Little headroom with preemptions means the"
                         " engine needs more memory or fewer concurrent requests.", units.PercentUnit,
                         [Target(f"1 - instance_model:vllm_kv_cache_usage:max{{{host_sel}}}",
                                 "{{model_name}} @ {{instance}}")],
                         thresholds=headroom, min_value=0, max_value=1,
                         links=[ctx.engine_link()], width=8),
        timeseries_panel("Queue headroom by engine", "Requests waiting on each engine of the selected hosts. A"
                         " queue that never empties means the engine is at capacity." + ctx.alert_note(waiting),
                         units.Short, [Target(f"{waiting}{{{host_sel}}}", "{{model_name}} @ {{instance}}")],
                         thresholds=ctx.alert_steps(waiting), min_value=0,
                         links=[ctx.engine_link()], width=8),
        timeseries_panel("Load by model", "Running and waiting requests per model across the fleet: capacity"
                         " is short where waiting stays above zero.", units.Short,
                         [Target("model:vllm_requests_running:sum", "running {{model_name}}"),
                          Target("model:vllm_requests_waiting:sum", "waiting {{model_name}}")],
                         min_value=0, links=[ctx.model_link()], width=8),
    )
    return board
