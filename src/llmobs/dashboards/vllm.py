"""vLLM serving: the whole inference layer of the catalog, per model and instance.

Latency percentiles and bucket rates come from the latency recording rules (which also read the old vLLM
metric names); distributions the rules do not cover read the raw histograms with $__rate_interval.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import units

from llmobs.dashboards.context import VLLM_UID, Context
from llmobs.dashboards.panels import (
    BAD,
    GOOD,
    PER_SECOND,
    TOKENS,
    TOKENS_PER_SECOND,
    Board,
    Steps,
    Target,
    heatmap_panel,
    stat_panel,
    table_panel,
    timeseries_panel,
)

ENGINE = "{{model_name}} @ {{instance}}"
BY_ENGINE = "model_name, instance"
# Latency histograms (recording_rules.yaml) that have an SLO target, and the setting that holds it.
SLO_TARGETS = {
    "vllm_time_to_first_token_seconds": "ttft_seconds",
    "vllm_inter_token_latency_seconds": "inter_token_latency_seconds",
}


def _rate(ctx: Context, series: str) -> str:
    return f"rate({ctx.engine(series)}[$__rate_interval])"


def _quantile(ctx: Context, q: float, histogram: str) -> str:
    return f"histogram_quantile({q}, sum by ({BY_ENGINE}, le) ({_rate(ctx, histogram + '_bucket')}))"


def _mean(ctx: Context, histogram: str) -> str:
    return (f"sum by ({BY_ENGINE}) ({_rate(ctx, histogram + '_sum')})"
            f" / (sum by ({BY_ENGINE}) ({_rate(ctx, histogram + '_count')}) > 0)")


def _buckets(ctx: Context, histogram: str) -> Target:
    return Target(f"sum by (le) ({_rate(ctx, histogram + '_bucket')})")


def _latency(ctx: Context, board: Board) -> None:
    """Percentiles and a heatmap for each latency histogram of the catalog."""
    defaults = ctx.settings.slo.defaults
    for hist in ctx.catalog.recording.latency_histograms:
        what = hist.meaning
        percentiles = [
            Target(ctx.engine(f"instance_model:{hist.name}:histogram_quantile5m", f'quantile="{ctx.quantile(q)}"'),
                   f"P{q * 100:g} {ENGINE}")
            for q in ctx.catalog.recording.quantiles
        ]
        field = SLO_TARGETS.get(hist.name)
        good, thresholds = " Good: flat and low;", Steps(GOOD)
        if field:
            target = getattr(defaults, field)
            thresholds = Steps(GOOD, ((target, BAD),))
            good = (f" Good: flat and under the SLO target {target:g} s (dashed, setting slo.defaults.{field};"
                    " models may have their own, see the SLO dashboard);")
        old_names = (f" Reads the old name {', '.join(hist.sources[1:])} too, for older vLLM."
                     if len(hist.sources) > 1 else "")
        board.add(
            timeseries_panel(
                f"{what.capitalize()}: percentiles",
                f"P{', P'.join(f'{q * 100:g}' for q in ctx.catalog.recording.quantiles)} of the {what} per"
                f" instance and model over 5 minutes ({hist.sources[0]}).{good} a P99 far above P50 means a few"
                f" requests wait much longer than the rest.{old_names}",
                units.Seconds, percentiles, thresholds=thresholds, links=[ctx.gpu_link()], width=12),
            heatmap_panel(
                f"{what.capitalize()}: distribution",
                f"Observations per second in each bucket of the {what} histogram (vLLM's own boundaries),"
                f" summed over the selected instances: a band that moves up means the service slows down."
                f"{old_names}",
                units.Seconds,
                Target(f"sum by (le) ({ctx.engine(f'instance_model_le:{hist.name}_bucket:rate5m')})"), width=12),
        )


def build(ctx: Context) -> Board:
    t = ctx.settings.thresholds
    board = Board(
        VLLM_UID, "vLLM serving",
        "Every vLLM metric per model and instance: requests and finish reasons, latency percentiles and"
        " heatmaps, queue, prefill and decode time, tokens, KV cache, preemptions, prefix cache, request"
        " lengths and speculative decoding. Series link to the GPU dashboard of their host.",
        [ctx.host_variable("vllm:num_requests_running"), ctx.model_variable(), ctx.instance_variable()],
    )
    error_ratio, waiting, kv_cache = (
        "instance_model:vllm_request_errors:ratio_rate5m", "instance_model:vllm_requests_waiting:sum",
        "instance_model:vllm_kv_cache_usage:max")
    requests = ctx.engine("instance_model:vllm_requests:rate5m")
    by_reason = ctx.engine("instance_model_reason:vllm_requests:rate5m")
    errors = ctx.engine("instance_model_reason:vllm_requests:rate5m", 'finished_reason="error"')
    http = ctx.by_host("http_requests_total", 'instance=~"$instance"')
    vllm_up = ctx.by_host("up", f'job="{ctx.jobs.vllm}", instance=~"$instance"')

    board.row("Requests")
    board.add(
        stat_panel("Engines up", f"Whether Prometheus could scrape each selected vLLM server (up, job"
                   f" {ctx.jobs.vllm})."
                   " Good: 1 everywhere; 0 means the server is down or unreachable.", units.Short,
                   [Target(vllm_up, "{{instance}}")],
                   thresholds=Steps(BAD, ((1, GOOD),)), width=6),
        stat_panel("Requests/s", "Finished requests per second of the selected engines.", units.RequestsPerSecond,
                   [Target(f"sum({requests})")], width=6),
        stat_panel("Engine error ratio", "Share of the selected engines' finished requests that failed inside"
                   " the engine." + ctx.alert_note(error_ratio, "Colours (per-instance alerts)"), units.PercentUnit,
                   [Target(f"(sum({errors}) or vector(0)) / (sum({requests}) > 0)")],
                   thresholds=ctx.alert_steps(error_ratio), decimals=2, width=6),
        stat_panel("Generated tokens/s", "Output tokens per second of the selected engines.", TOKENS_PER_SECOND,
                   [Target(f"sum({ctx.engine('instance_model:vllm_generation_tokens:rate5m')})")], width=6),
        timeseries_panel("Requests/s by instance", "Finished requests per second per instance and model, any"
                         " finish reason (vllm:request_success_total counts them all).", units.RequestsPerSecond,
                         [Target(requests, ENGINE)], links=[ctx.gpu_link()]),
        timeseries_panel("Finished requests by reason", "Finished requests per second by finish reason: stop"
                         " and length are normal endings, repetition stopped on a repetition limit, abort means"
                         " the client went away, error means the engine failed the request. Good: no error.",
                         units.RequestsPerSecond,
                         [Target(f"sum by (finished_reason) ({by_reason})", "{{finished_reason}}")], stacked=True),
        timeseries_panel("Engine error ratio by instance", "Share of finished requests that failed inside the"
                         " engine, per instance." + ctx.alert_note(error_ratio), units.PercentUnit,
                         [Target(ctx.engine(error_ratio), ENGINE)], thresholds=ctx.alert_steps(error_ratio),
                         min_value=0, links=[ctx.gpu_link()]),
        timeseries_panel("HTTP responses by status", "Responses of the vLLM API servers by status class"
                         " (prometheus_fastapi_instrumentator). It has no model_name label, so it follows the"
                         " host and instance selection only. Good: 2xx only; 4xx are client mistakes, 5xx"
                         " server failures.", units.RequestsPerSecond,
                         [Target(f"sum by (status) (rate({http}[$__rate_interval]))", "{{status}}")], stacked=True),
    )

    board.row("Latency")
    _latency(ctx, board)
    board.add(
        timeseries_panel("Time per output token per request: P95", "95th percentile of each finished"
                         " request's mean time per output token (TPOT), per instance. Requests with one output"
                         " token record 0. Compare with the inter-token latency, which counts every token.",
                         units.Seconds,
                         [Target(_quantile(ctx, 0.95, "vllm:request_time_per_output_token_seconds"), ENGINE)],
                         width=24),
    )

    board.row("Request phases")
    phases = {
        "queue": "vllm:request_queue_time_seconds",
        "prefill": "vllm:request_prefill_time_seconds",
        "decode": "vllm:request_decode_time_seconds",
    }
    board.add(
        timeseries_panel("Where a request's time goes (mean)", "Mean time a finished request spent waiting,"
                         " in prefill (processing the prompt) and in decode (generating), per instance. A"
                         " growing queue share means the engine is at capacity; a growing prefill share means"
                         " longer prompts or a cold prefix cache.", units.Seconds,
                         [Target(_mean(ctx, metric), f"{phase} {ENGINE}") for phase, metric in phases.items()],
                         stacked=True, width=8),
        timeseries_panel("Prefill time: P50 / P95", "Time finished requests spent in prefill, per instance.",
                         units.Seconds,
                         [Target(_quantile(ctx, q, "vllm:request_prefill_time_seconds"), f"P{q * 100:g} {ENGINE}")
                          for q in (0.5, 0.95)], width=8),
        timeseries_panel("Decode time: P50 / P95", "Time finished requests spent in decode, per instance. It"
                         " grows with the output length.", units.Seconds,
                         [Target(_quantile(ctx, q, "vllm:request_decode_time_seconds"), f"P{q * 100:g} {ENGINE}")
                          for q in (0.5, 0.95)], width=8),
        timeseries_panel("Inference time: P50 / P95", "Time finished requests spent running (prefill plus"
                         " decode, without the queue), per instance.", units.Seconds,
                         [Target(_quantile(ctx, q, "vllm:request_inference_time_seconds"), f"P{q * 100:g} {ENGINE}")
                          for q in (0.5, 0.95)], width=12),
        heatmap_panel("Tokens per engine step", "How many tokens the engine processed per scheduler step"
                      " (vllm:iteration_tokens_total): the batch size in tokens. Bands near the"
                      " max_num_batched_tokens limit mean full batches.", TOKENS,
                      _buckets(ctx, "vllm:iteration_tokens_total"), width=12),
    )

    board.row("Scheduler and KV cache")
    board.add(
        timeseries_panel("Running requests", "Requests in the running batch, per instance.", units.Short,
                         [Target(ctx.engine("instance_model:vllm_requests_running:sum"), ENGINE)],
                         min_value=0, width=8, links=[ctx.gpu_link()]),
        timeseries_panel("Waiting requests", "Requests queued, per instance." + ctx.alert_note(waiting),
                         units.Short, [Target(ctx.engine(waiting), ENGINE)], thresholds=ctx.alert_steps(waiting),
                         min_value=0, width=8, links=[ctx.gpu_link()]),
        timeseries_panel("KV-cache usage", "Share of KV-cache blocks in use per instance (old and new vLLM"
                         " names). High usage alone is healthy; with preemptions the cache is too small."
                         + ctx.alert_note(kv_cache), units.PercentUnit, [Target(ctx.engine(kv_cache), ENGINE)],
                         thresholds=ctx.alert_steps(kv_cache), min_value=0, max_value=1, width=8,
                         links=[ctx.gpu_link()]),
        timeseries_panel("Preemptions/s", "Requests preempted per second for lack of KV cache, per instance."
                         " Good: zero. Dashed line: the preemption rate above which a full KV cache alerts"
                         f" ({ctx.alert_name(kv_cache)}, thresholds.preemptions_per_second_warning).",
                         units.OpsPerSecond,
                         [Target(ctx.engine("instance_model:vllm_preemptions:rate5m"), ENGINE)],
                         thresholds=Steps.rising(t.preemptions_per_second_warning, None), min_value=0, width=8,
                         links=[ctx.gpu_link()]),
        timeseries_panel("Prefix-cache hit ratio", "Share of prompt tokens found in the prefix cache, per"
                         " instance. Higher is better: cached tokens skip prefill. Near 0 is normal when"
                         " prompts share no prefix.", units.PercentUnit,
                         [Target(ctx.engine("instance_model:vllm_prefix_cache_hits:ratio_rate5m"), ENGINE)],
                         min_value=0, max_value=1, width=8),
        table_panel("Engine cache configuration", "vLLM's cache configuration per engine"
                    " (vllm:cache_config_info): block size, number of GPU blocks, cache dtype and"
                    " gpu_memory_utilization. Blocks x block size is the KV capacity in tokens.", units.Short,
                    [Target(ctx.by_host("vllm:cache_config_info", 'instance=~"$instance"'))],
                    hide=("Time", "Value", "__name__"), width=8),
    )

    board.row("Tokens and request lengths")
    board.add(
        timeseries_panel("Token throughput", "Prompt and generated tokens per second per instance.",
                         TOKENS_PER_SECOND,
                         [Target(ctx.engine("instance_model:vllm_prompt_tokens:rate5m"), f"prompt {ENGINE}"),
                          Target(ctx.engine("instance_model:vllm_generation_tokens:rate5m"), f"generated {ENGINE}")],
                         links=[ctx.gpu_link()]),
        timeseries_panel("Request lengths: P50 / P95", "Prompt and output length of finished requests, and"
                         " the max_tokens they asked for. An output P95 at the requested maximum means"
                         " answers are cut off (finish reason length).", TOKENS,
                         [Target(_quantile(ctx, q, metric), f"{what} P{q * 100:g} {ENGINE}")
                          for what, metric in (("prompt", "vllm:request_prompt_tokens"),
                                               ("output", "vllm:request_generation_tokens"),
                                               ("max_tokens", "vllm:request_params_max_tokens"),
                                               ("max output", "vllm:request_max_num_generation_tokens"))
                          for q in (0.5, 0.95)], log_scale=True),
        heatmap_panel("Prompt length distribution", "Finished requests per second by prompt length (tokens).",
                      TOKENS, _buckets(ctx, "vllm:request_prompt_tokens"), width=8),
        heatmap_panel("Output length distribution", "Finished requests per second by generated length"
                      " (tokens).", TOKENS, _buckets(ctx, "vllm:request_generation_tokens"), width=8),
        timeseries_panel("Parallel sampling (n)", "Mean n sampling parameter of requests (completions"
                         " generated per prompt). Usually 1; higher n multiplies the decode work.", units.Short,
                         [Target(_mean(ctx, "vllm:request_params_n"), ENGINE)], min_value=0, width=8),
    )

    board.row("Speculative decoding")
    spec = ("vllm:spec_decode_num_drafts_total", "vllm:spec_decode_num_draft_tokens_total",
            "vllm:spec_decode_num_accepted_tokens_total")
    drafts, draft_tokens, accepted = (f"sum by ({BY_ENGINE}) ({_rate(ctx, m)})" for m in spec)
    note = ctx.requirement(*spec)
    board.add(
        timeseries_panel("Draft acceptance rate", "Share of proposed draft tokens the target model accepted."
                         " Higher is better: below ~0.5 the drafts cost more than they save." + note,
                         units.PercentUnit, [Target(f"{accepted} / ({draft_tokens} > 0)", ENGINE)],
                         min_value=0, max_value=1, width=8),
        timeseries_panel("Mean acceptance length", "Tokens produced per draft step (1 + accepted tokens per"
                         " draft). Higher is better." + note, units.Short,
                         [Target(f"1 + {accepted} / ({drafts} > 0)", ENGINE)], width=8),
        timeseries_panel("Draft and accepted tokens/s", "Draft tokens proposed and accepted per second." + note,
                         PER_SECOND, [Target(draft_tokens, f"drafted {ENGINE}"),
                                      Target(accepted, f"accepted {ENGINE}")], width=8),
    )
    return board
