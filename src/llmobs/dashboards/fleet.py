"""LLM fleet overview: is the fleet serving, how fast against its SLOs, and are its GPUs healthy.

Every panel reads recording rules (fleet:, model:, host:), so it stays fast on a large fleet; the GPU
fault counters read the per-GPU fault series once, summed to one number.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import units

from llmobs.dashboards.context import FLEET_UID, Context
from llmobs.dashboards.panels import (
    BAD,
    GOOD,
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


def _slo_targets(ctx: Context, field: str, unit: str) -> str:
    """Say which latency target the dashed line shows, and any per-model target that differs."""
    default = getattr(ctx.settings.slo.defaults, field)
    text = f"Dashed line: the SLO target {default:g} {unit} (setting slo.defaults.{field})"
    others = [f"{model} {value:g} {unit}" for model in sorted(ctx.settings.slo.models)
              if (value := getattr(ctx.settings.slo.targets_for(model), field)) != default]
    return text + (f"; per-model targets: {', '.join(others)}." if others else ".")


def build(ctx: Context) -> Board:
    t = ctx.settings.thresholds
    slo = ctx.settings.slo.defaults
    p95 = ctx.quantile(0.95)
    model_sel = 'model_name=~"$model_name"'
    errors = "instance_model:vllm_request_errors:ratio_rate5m"
    waiting = "instance_model:vllm_requests_waiting:sum"
    kv_cache = "instance_model:vllm_kv_cache_usage:max"
    board = Board(
        FLEET_UID, "LLM fleet overview",
        "Requests, latency against the SLOs, tokens, queue and KV cache of every model, the health of every"
        " GPU and the alerts that fire. Click a model or a host to open its vLLM or GPU dashboard.",
        [ctx.model_variable(filter_by_host=False)],
    )

    board.row("Traffic")
    board.add(
        stat_panel("Requests/s", "Finished requests per second across the fleet, any finish reason"
                   " (fleet:vllm_requests:rate5m). Zero while traffic is expected means the engines stopped"
                   " serving.", units.RequestsPerSecond, [Target("fleet:vllm_requests:rate5m")]),
        stat_panel("Engine error ratio", "Share of finished requests that failed inside the engine"
                   " (finished_reason=error) across the fleet. Good: near 0."
                   + ctx.alert_note(errors, "Colours (per-instance alerts)"), units.PercentUnit,
                   [Target('(sum(model_reason:vllm_requests:rate5m{finished_reason="error"}) or vector(0))'
                           " / (fleet:vllm_requests:rate5m > 0)")], thresholds=ctx.alert_steps(errors), decimals=2),
        stat_panel("Completed normally", "Share of finished requests that ended normally (stop, length or"
                   " repetition: not failed, not aborted by the client). Good: close to 100 %.",
                   units.PercentUnit,
                   [Target('sum(model_reason:vllm_requests:rate5m{finished_reason!~"error|abort"})'
                           " / (fleet:vllm_requests:rate5m > 0)")], decimals=2),
        stat_panel("Generated tokens/s", "Output tokens per second across the fleet"
                   " (fleet:vllm_generation_tokens:rate5m): the fleet's useful work.", TOKENS_PER_SECOND,
                   [Target("fleet:vllm_generation_tokens:rate5m")]),
        stat_panel("Prompt tokens/s", "Prompt (prefill) tokens per second across the fleet.", TOKENS_PER_SECOND,
                   [Target("fleet:vllm_prompt_tokens:rate5m")]),
        stat_panel("Running / waiting", "Requests in the running batches and in the queues across the"
                   " fleet. A waiting count that stays above zero means the engines are saturated.",
                   units.Short, [Target("fleet:vllm_requests_running:sum", "running"),
                                 Target("fleet:vllm_requests_waiting:sum", "waiting")]),
        timeseries_panel("Requests/s by model", "Finished requests per second per model"
                         " (model:vllm_requests:rate5m). Click a series to open the model's vLLM dashboard.",
                         units.RequestsPerSecond, [Target(f"model:vllm_requests:rate5m{{{model_sel}}}",
                                                          "{{model_name}}")], links=[ctx.model_link()]),
        timeseries_panel("Finished requests by reason", "Finished requests per second by finish reason: stop"
                         " and length are normal endings, abort means the client went away, error means the"
                         " engine failed the request. Good: error stays at zero.", units.RequestsPerSecond,
                         [Target(f"sum by (finished_reason) (model_reason:vllm_requests:rate5m{{{model_sel}}})",
                                 "{{finished_reason}}")], stacked=True),
        timeseries_panel("Engine error ratio by model", "Share of finished requests per model that failed"
                         " inside the engine." + ctx.alert_note(errors, "Dashed lines (per-instance alerts)"),
                         units.PercentUnit,
                         [Target(f"model:vllm_request_errors:ratio_rate5m{{{model_sel}}}", "{{model_name}}")],
                         thresholds=ctx.alert_steps(errors), min_value=0, links=[ctx.model_link()]),
        timeseries_panel("Completed normally by model", "Share of finished requests per model that ended"
                         " normally (not error, not abort). Good: close to 100 %; a drop with many aborts"
                         " often means clients time out.", units.PercentUnit,
                         [Target(f"model:vllm_request_success:ratio_rate5m{{{model_sel}}}", "{{model_name}}")],
                         min_value=0, max_value=1, links=[ctx.model_link()]),
    )

    board.row("Latency against the SLOs")
    board.add(
        timeseries_panel("P95 time to first token by model", "95th percentile of the time from a request's"
                         " arrival to its first output token, per model, over 5 minutes. Good: under the"
                         " target. " + _slo_targets(ctx, "ttft_seconds", "s"), units.Seconds,
                         [Target(f'model:vllm_time_to_first_token_seconds:histogram_quantile5m{{{model_sel},'
                                 f' quantile="{p95}"}}', "{{model_name}}")],
                         thresholds=Steps(GOOD, ((slo.ttft_seconds, BAD),)), links=[ctx.model_link()]),
        timeseries_panel("P95 inter-token latency by model", "95th percentile of the time between two output"
                         " tokens of a request, per model. Good: under the target. "
                         + _slo_targets(ctx, "inter_token_latency_seconds", "s"), units.Seconds,
                         [Target(f"model:vllm_inter_token_latency_seconds:histogram_quantile5m{{{model_sel},"
                                 f' quantile="{p95}"}}', "{{model_name}}")],
                         thresholds=Steps(GOOD, ((slo.inter_token_latency_seconds, BAD),)),
                         links=[ctx.model_link()]),
        timeseries_panel("P95 end-to-end latency by model", "95th percentile of the time from arrival to the"
                         " last token, per model. It grows with the output length, so compare it with the"
                         " generation-length distribution on the vLLM dashboard before calling it slow.",
                         units.Seconds,
                         [Target(f"model:vllm_e2e_request_latency_seconds:histogram_quantile5m{{{model_sel},"
                                 f' quantile="{p95}"}}', "{{model_name}}")], links=[ctx.model_link()]),
        timeseries_panel("P95 queue time by model", "95th percentile of the time requests waited before the"
                         " engine scheduled them. Good: close to zero; a rising queue time is the first sign"
                         " of an engine at capacity.", units.Seconds,
                         [Target(f"model:vllm_request_queue_time_seconds:histogram_quantile5m{{{model_sel},"
                                 f' quantile="{p95}"}}', "{{model_name}}")], links=[ctx.model_link()]),
    )

    board.row("Tokens, queue and KV cache")
    board.add(
        timeseries_panel("Token throughput by model", "Prompt and generated tokens per second per model.",
                         TOKENS_PER_SECOND,
                         [Target(f"model:vllm_prompt_tokens:rate5m{{{model_sel}}}", "{{model_name}} prompt"),
                          Target(f"model:vllm_generation_tokens:rate5m{{{model_sel}}}",
                                 "{{model_name}} generated")], links=[ctx.model_link()]),
        timeseries_panel("Running requests by model", "Requests in the running batches per model.", units.Short,
                         [Target(f"model:vllm_requests_running:sum{{{model_sel}}}", "{{model_name}}")],
                         min_value=0, links=[ctx.model_link()]),
        timeseries_panel("Deepest queue by model", "Waiting requests of the most loaded instance of each"
                         " model." + ctx.alert_note(waiting), units.Short,
                         [Target(f"max by (model_name) ({waiting}{{{model_sel}}})", "{{model_name}}")],
                         thresholds=ctx.alert_steps(waiting), min_value=0,
                         links=[ctx.model_link()]),
        timeseries_panel("KV-cache usage, fullest instance by model", "Share of KV-cache blocks in use on the"
                         " fullest instance of each model (old and new vLLM metric names). High usage alone is"
                         " fine; with preemptions it means the cache is too small." + ctx.alert_note(kv_cache),
                         units.PercentUnit, [Target(f"model:vllm_kv_cache_usage:max{{{model_sel}}}", "{{model_name}}")],
                         thresholds=ctx.alert_steps(kv_cache), min_value=0, max_value=1,
                         links=[ctx.model_link()]),
        timeseries_panel("Preemptions/s, busiest instance by model", "Requests preempted per second for lack"
                         " of KV cache on the busiest instance of each model. Good: zero. Dashed line: the"
                         f" preemption rate above which a full KV cache alerts ({ctx.alert_name(kv_cache)},"
                         " thresholds.preemptions_per_second_warning).",
                         units.OpsPerSecond,
                         [Target(f"max by (model_name) (instance_model:vllm_preemptions:rate5m{{{model_sel}}})",
                                 "{{model_name}}")],
                         thresholds=Steps.rising(t.preemptions_per_second_warning, None), min_value=0,
                         links=[ctx.model_link()]),
    )

    board.row("GPU health")
    margin = "host_gpu:dcgm_temp_margin:celsius"
    power_ratio = "host_gpu:dcgm_power_usage:ratio_limit"
    any_fault = Steps.rising(None, 1)
    h = ctx.host
    board.add(
        stat_panel("Hosts with GPUs", "Servers whose dcgm-exporter reports at least one GPU.", units.Short,
                   [Target("count(host:dcgm_gpus:count)")]),
        stat_panel("GPUs reporting", "GPUs that report across the fleet (fleet:dcgm_gpus:count). A drop means"
                   " a GPU fell off the bus or an exporter is down.", units.Short,
                   [Target("fleet:dcgm_gpus:count")]),
        stat_panel("Hottest GPU", "Temperature of the hottest GPU of the fleet. What is too hot depends on the"
                   " card: see the smallest thermal margin next to it.", units.Celsius,
                   [Target("fleet:dcgm_gpu_temp:max")]),
        stat_panel("Smallest thermal margin", "Degrees left before the nearest GPU reaches its own slowdown"
                   " threshold." + ctx.alert_note(margin, "Colours"), units.Celsius,
                   [Target(f"min({margin})")], thresholds=ctx.alert_steps(margin)),
        stat_panel("Mean GPU utilisation", "Average GPU utilisation across the fleet. Near 100 % is normal for"
                   " a busy inference fleet; near 0 % with traffic waiting is not.", units.Percent,
                   [Target("fleet:dcgm_gpu_utilization:avg")], min_value=0, max_value=100),
        stat_panel("GPU power", "Power drawn by all GPUs of the fleet.", units.Watt,
                   [Target("fleet:dcgm_power_usage_watts:sum")]),
        stat_panel("XID errors", "XID errors of all GPUs within dcgm-exporter's XID window (5 minutes by"
                   " default; fleet:dcgm_xid_errors:sum). Good: 0. The GPU dashboard names the GPU, the code"
                   " and what it means.", units.Short, [Target("fleet:dcgm_xid_errors:sum")], thresholds=any_fault),
        stat_panel("GPUs with uncorrectable ECC errors", "GPUs with double-bit (uncorrectable) ECC errors"
                   " since the driver was loaded. Good: 0; any other value needs a GPU reset.", units.Short,
                   [Target(f"count(max by ({ctx.gpu_by}) (DCGM_FI_DEV_ECC_DBE_VOL_TOTAL) > 0) or vector(0)")],
                   thresholds=any_fault),
        stat_panel("GPUs with row-remap trouble", "GPUs whose HBM row remapping failed or waits for a reset."
                   " Good: 0.", units.Short,
                   [Target(f"count(max by ({ctx.gpu_by}) (DCGM_FI_DEV_ROW_REMAP_FAILURE > 0"
                           " or DCGM_FI_DEV_ROW_REMAP_PENDING > 0)) or vector(0)")], thresholds=any_fault),
        stat_panel("Firing alerts", "Alerts firing now, by severity. The always-firing Watchdog (the"
                   " dead man's switch) is expected; anything else is listed below.", units.Short,
                   [Target('count by (severity) (ALERTS{alertstate="firing"})', "{{severity}}")]),
        merged_table_panel("Hosts", "One row per server: GPUs, mean utilisation, power, the smallest thermal"
                           " margin and the highest power-to-limit ratio of its GPUs (coloured where their alerts"
                           " fire), and the tokens its engines generate. Click a host to open its GPU dashboard.", [
                               Column("host:dcgm_gpus:count", "GPUs", units.Short),
                               Column("host:dcgm_gpu_utilization:avg", "Utilisation", units.Percent),
                               Column("host:dcgm_power_usage_watts:sum", "Power", units.Watt),
                               Column(f"min by ({h}) ({margin})", "Thermal margin", units.Celsius,
                                      ctx.alert_steps(margin)),
                               Column(f"max by ({h}) ({power_ratio})", "Power / limit", units.PercentUnit,
                                      ctx.alert_steps(power_ratio)),
                               Column("host:vllm_generation_tokens:rate5m", "Generated tokens/s",
                                      TOKENS_PER_SECOND),
                           ], links=[ctx.gpu_link()], width=24, height=8),
    )

    board.row("Alerts")
    board.add(table_panel("Firing alerts", "Every alert firing now with its labels (host, GPU, model,"
                          " severity). Good: only the Watchdog. Silences and routing are in Alertmanager.",
                          units.Short, [Target('ALERTS{alertstate="firing"}')],
                          hide=("Time", "Value", "__name__", "alertstate")))
    return board
