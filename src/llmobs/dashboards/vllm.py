"""vLLM serving: the whole inference layer of the catalog, per model and instance.

Percentiles and bucket rates of every histogram come from the latency recording rules (which also read the
old vLLM metric names): no panel computes a quantile over raw buckets, the cost of which grows with the fleet. Each
panel is a named function over the queries of `llmobs.dashboards.queries`; `build()` lays them out in rows.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import heatmap, stat, table, timeseries
from grafana_foundation_sdk.models import units

from llmobs import catalog as catalog_mod
from llmobs import promql
from llmobs.catalog import LatencyHistogram
from llmobs.conventions import ENGINES
from llmobs.dashboards import common
from llmobs.dashboards.context import Context
from llmobs.dashboards.panels import (
    BAD,
    GOOD,
    PER_SECOND,
    TOKENS,
    TOKENS_PER_SECOND,
    Board,
    Link,
    Steps,
    Target,
    heatmap_panel,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from llmobs.dashboards.queries import engine

ENGINE = "{{model_name}} @ {{instance}}"
# Request phases and their histograms: time queued, in prefill (the prompt) and in decode (generating).
PHASES = {
    "queue": "vllm:request_queue_time_seconds",
    "prefill": "vllm:request_prefill_time_seconds",
    "decode": "vllm:request_decode_time_seconds",
}
# Request lengths (tokens) and their histograms.
LENGTHS = (("prompt", "vllm:request_prompt_tokens"), ("output", "vllm:request_generation_tokens"),
           ("max_tokens", "vllm:request_params_max_tokens"), ("max output", "vllm:request_max_num_generation_tokens"))


def _gpu_link(ctx: Context) -> list[Link]:
    return [common.gpu_link(ctx)]


# ------------------------------------------------------------------ requests
def engines_up(ctx: Context) -> stat.Panel:
    job = promql.alternatives([getattr(ctx.settings.jobs, name) for name in ENGINES])
    return stat_panel(
        "Engines up", f"Whether Prometheus could scrape each selected engine (up, jobs {job}). Good: 1"
        " everywhere; 0 means the server is down or unreachable.", units.Short,
        [Target(engine.up(ctx.hosts, job), "{{instance}}")], thresholds=Steps(BAD, ((1, GOOD),)), width=6)


def requests_total(ctx: Context) -> stat.Panel:
    return stat_panel("Requests/s", "Finished requests per second of the selected engines.", units.RequestsPerSecond,
                      [Target(engine.total(ctx.engines, engine.REQUESTS))], width=6)


def error_ratio(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Engine error ratio", "Share of the selected engines' finished requests that failed inside the engine."
        + ctx.alert_note(engine.ERROR_RATIO, "Colours (per-instance alerts)"), units.PercentUnit,
        [Target(engine.error_ratio(ctx.engines))], thresholds=ctx.alert_steps(engine.ERROR_RATIO), decimals=2,
        width=6)


def generated_tokens(ctx: Context) -> stat.Panel:
    return stat_panel("Generated tokens/s", "Output tokens per second of the selected engines.", TOKENS_PER_SECOND,
                      [Target(engine.total(ctx.engines, engine.GENERATION_TOKENS))], width=6)


def requests_by_instance(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Requests/s by instance", "Finished requests per second per instance and model, any finish reason"
        " (vllm:request_success_total counts them all).", units.RequestsPerSecond,
        [Target(ctx.engines.sel(engine.REQUESTS), ENGINE)], links=_gpu_link(ctx))


def finished_by_reason(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Finished requests by reason", "Finished requests per second by finish reason: stop and length are normal"
        " endings, repetition stopped on a repetition limit, abort means the client went away, error means the"
        " engine failed the request. Good: no error.", units.RequestsPerSecond,
        [Target(engine.by_reason(ctx.engines), "{{finished_reason}}")], stacked=True)


def error_ratio_by_instance(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Engine error ratio by instance", "Share of finished requests that failed inside the engine, per"
        " instance." + ctx.alert_note(engine.ERROR_RATIO), units.PercentUnit,
        [Target(ctx.engines.sel(engine.ERROR_RATIO), ENGINE)], thresholds=ctx.alert_steps(engine.ERROR_RATIO),
        min_value=0, links=_gpu_link(ctx))


def http_responses(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "HTTP responses by status", "Responses of the vLLM API servers by status class"
        " (prometheus_fastapi_instrumentator). It has no model_name label, so it follows the host and instance"
        " selection only. Good: 2xx only; 4xx are client mistakes, 5xx server failures.", units.RequestsPerSecond,
        [Target(engine.http_responses(ctx.hosts), "{{status}}")], stacked=True)


# ------------------------------------------------------------------ latency
def _latency_good(ctx: Context, histogram: LatencyHistogram) -> tuple[str, Steps]:
    """What a good percentile line looks like: under the SLO target where the histogram has one."""
    field = ctx.slo_target(histogram)
    if not field:
        return " Good: flat and low;", Steps(GOOD)
    target = getattr(ctx.settings.slo.defaults, field)
    return (f" Good: flat and under the SLO target {target:g} s (dashed, setting slo.defaults.{field}; models may"
            " have their own, see the SLO dashboard);"), Steps(GOOD, ((target, BAD),))


def latency_percentiles(ctx: Context, histogram: LatencyHistogram) -> timeseries.Panel:
    quantiles = ctx.catalog.recording.quantiles
    what, (good, thresholds) = histogram.meaning, _latency_good(ctx, histogram)
    return timeseries_panel(
        f"{what.capitalize()}: percentiles",
        f"P{', P'.join(f'{q * 100:g}' for q in quantiles)} of the {what} per instance and model over 5 minutes"
        f" ({histogram.sources[0]}).{good} a P99 far above P50 means a few requests wait much longer than the"
        f" rest.{_old_names(histogram)}", units.Seconds,
        [Target(engine.latency_percentile(ctx.engines, histogram, ctx.quantile(q)), f"P{q * 100:g} {ENGINE}")
         for q in quantiles], thresholds=thresholds, links=_gpu_link(ctx), width=12)


def latency_distribution(ctx: Context, histogram: LatencyHistogram) -> heatmap.Panel:
    what = histogram.meaning
    return heatmap_panel(
        f"{what.capitalize()}: distribution",
        f"Observations per second in each bucket of the {what} histogram (vLLM's own boundaries), summed over the"
        f" selected instances: a band that moves up means the service slows down.{_old_names(histogram)}",
        units.Seconds, Target(engine.latency_buckets(ctx.engines, histogram)), width=12)


def _old_names(histogram: LatencyHistogram) -> str:
    catalog = catalog_mod.load()
    vllm = [name for name in histogram.sources if catalog.metric(name).engine == "vllm"]
    others = [catalog.engines[engine].title for engine in catalog.engines if engine != "vllm" and any(
        catalog.metric(name).engine == engine for name in histogram.sources)]
    lacking = [catalog.engines[engine].title for engine in catalog.engines if not any(
        catalog.metric(name).engine == engine for name in histogram.sources)]
    text = f" Reads the old name {', '.join(vllm[1:])} too, for older vLLM." if len(vllm) > 1 else ""
    if others:
        text += f" Also {', '.join(others)}, each with its own buckets."
    if lacking:
        text += f" Not for {', '.join(lacking)}: it serves no such histogram."
    return text


def latency(ctx: Context) -> list[timeseries.Panel | heatmap.Panel]:
    """Percentiles and a heatmap for each latency histogram of the catalog."""
    return [panel for histogram in ctx.catalog.recording.latency_histograms if histogram.compat is None
            for panel in (latency_percentiles(ctx, histogram), latency_distribution(ctx, histogram))]


def time_per_output_token(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Time per output token per request: P95", "95th percentile of each finished request's mean time per"
        " output token (TPOT), per instance, over 5 minutes. Requests with one output token record 0. Compare with"
        " the inter-token latency, which counts every token.", units.Seconds,
        [Target(_percentile(ctx, "vllm:request_time_per_output_token_seconds", 0.95), ENGINE)], width=24)


# ------------------------------------------------------------------ request phases
def phase_means(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Where a request's time goes (mean)", "Mean time a finished request spent waiting, in prefill"
        " (processing the prompt) and in decode (generating), per instance. A growing queue share means the"
        " engine is at capacity; a growing prefill share means longer prompts or a cold prefix cache.",
        units.Seconds, [Target(engine.mean(ctx.engines, histogram), f"{phase} {ENGINE}")
                        for phase, histogram in PHASES.items()], stacked=True, width=8)


def _recorded(ctx: Context, metric: str) -> LatencyHistogram:
    """The recorded histogram (recording_rules.yaml latency_histograms) of one of vLLM's histograms."""
    return ctx.latency_histogram(metric.replace(":", "_"))


def _percentile(ctx: Context, metric: str, q: float) -> str:
    """A percentile of one of vLLM's histograms per instance and model, recorded over 5 minutes."""
    return engine.latency_percentile(ctx.engines, _recorded(ctx, metric), ctx.quantile(q))


def _median_and_p95(ctx: Context, title: str, description: str, histogram: str, width: int) -> timeseries.Panel:
    return timeseries_panel(title, description + " Over 5 minutes.", units.Seconds,
                            [Target(_percentile(ctx, histogram, q), f"P{q * 100:g} {ENGINE}")
                             for q in (0.5, 0.95)], width=width)


def prefill_time(ctx: Context) -> timeseries.Panel:
    return _median_and_p95(ctx, "Prefill time: P50 / P95", "Time finished requests spent in prefill, per"
                           " instance.", PHASES["prefill"], 8)


def decode_time(ctx: Context) -> timeseries.Panel:
    return _median_and_p95(ctx, "Decode time: P50 / P95", "Time finished requests spent in decode, per"
                           " instance. It grows with the output length.", PHASES["decode"], 8)


def inference_time(ctx: Context) -> timeseries.Panel:
    return _median_and_p95(ctx, "Inference time: P50 / P95", "Time finished requests spent running (prefill"
                           " plus decode, without the queue), per instance.", "vllm:request_inference_time_seconds", 12)


def tokens_per_step(ctx: Context) -> heatmap.Panel:
    return heatmap_panel(
        "Tokens per engine step", "How many tokens the engine processed per scheduler step"
        " (vllm:iteration_tokens_total): the batch size in tokens. Bands near the max_num_batched_tokens limit"
        " mean full batches.", TOKENS,
        Target(engine.latency_buckets(ctx.engines, _recorded(ctx, "vllm:iteration_tokens_total"))),
        width=12)


# ------------------------------------------------------------------ scheduler and KV cache
def running(ctx: Context) -> timeseries.Panel:
    return timeseries_panel("Running requests", "Requests in the running batch, per instance.", units.Short,
                            [Target(ctx.engines.sel(engine.RUNNING), ENGINE)], min_value=0, width=8,
                            links=_gpu_link(ctx))


def waiting(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Waiting requests", "Requests queued for capacity, per instance (without requests deferred for a LoRA"
        " budget or a KV transfer)." + ctx.alert_note(engine.WAITING), units.Short,
        [Target(ctx.engines.sel(engine.WAITING), ENGINE)], thresholds=ctx.alert_steps(engine.WAITING), min_value=0,
        width=8, links=_gpu_link(ctx))


def kv_cache(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "KV-cache usage", "Share of KV-cache blocks in use per instance (old and new vLLM names). High usage alone"
        " is healthy; with preemptions the cache is too small." + ctx.alert_note(engine.KV_CACHE_USAGE),
        units.PercentUnit, [Target(ctx.engines.sel(engine.KV_CACHE_USAGE), ENGINE)],
        thresholds=ctx.alert_steps(engine.KV_CACHE_USAGE), min_value=0, max_value=1, width=8, links=_gpu_link(ctx))


def preemptions(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Preemptions/s", "Requests preempted per second for lack of KV cache, per instance. Good: zero. Dashed"
        f" line: the preemption rate above which a full KV cache alerts ({ctx.alert_name(engine.KV_CACHE_USAGE)},"
        " thresholds.preemptions_per_second_warning).", units.OpsPerSecond,
        [Target(ctx.engines.sel(engine.PREEMPTIONS), ENGINE)],
        thresholds=Steps.rising(ctx.settings.thresholds.preemptions_per_second_warning, None), min_value=0, width=8,
        links=_gpu_link(ctx))


def prefix_cache_hits(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Prefix-cache hit ratio", "Share of prompt tokens found in the prefix cache, per instance. Higher is"
        " better: cached tokens skip prefill. Near 0 is normal when prompts share no prefix.", units.PercentUnit,
        [Target(ctx.engines.sel(engine.PREFIX_CACHE_HITS), ENGINE)], min_value=0, max_value=1, width=8)


def cache_config(ctx: Context) -> table.Panel:
    return table_panel(
        "Engine cache configuration", "vLLM's cache configuration per engine (vllm:cache_config_info): block"
        " size, number of GPU blocks, cache dtype and gpu_memory_utilization. Blocks x block size is the KV"
        " capacity in tokens.", units.Short, [Target(engine.cache_config(ctx.hosts))],
        hide=("Time", "Value", "__name__"), width=8)


# ------------------------------------------------------------------ tokens and request lengths
def token_throughput(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Token throughput", "Prompt and generated tokens per second per instance.", TOKENS_PER_SECOND,
        [Target(ctx.engines.sel(engine.PROMPT_TOKENS), f"prompt {ENGINE}"),
         Target(ctx.engines.sel(engine.GENERATION_TOKENS), f"generated {ENGINE}")], links=_gpu_link(ctx))


def request_lengths(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Request lengths: P50 / P95", "Prompt and output length of finished requests, and the max_tokens they"
        " asked for, over 5 minutes. An output P95 at the requested maximum means answers are cut off (finish"
        " reason length).", TOKENS, [Target(_percentile(ctx, histogram, q), f"{what} P{q * 100:g} {ENGINE}")
                 for what, histogram in LENGTHS for q in (0.5, 0.95)], log_scale=True)


def prompt_lengths(ctx: Context) -> heatmap.Panel:
    return heatmap_panel(
        "Prompt length distribution", "Finished requests per second by prompt length (tokens).", TOKENS,
        Target(engine.latency_buckets(ctx.engines, _recorded(ctx, "vllm:request_prompt_tokens"))), width=8)


def output_lengths(ctx: Context) -> heatmap.Panel:
    return heatmap_panel(
        "Output length distribution", "Finished requests per second by generated length (tokens).", TOKENS,
        Target(engine.latency_buckets(ctx.engines, _recorded(ctx, "vllm:request_generation_tokens"))), width=8)


def parallel_sampling(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Parallel sampling (n)", "Mean n sampling parameter of requests (completions generated per prompt)."
        " Usually 1; higher n multiplies the decode work.", units.Short,
        [Target(engine.mean(ctx.engines, "vllm:request_params_n"), ENGINE)], min_value=0, width=8)


# ------------------------------------------------------------------ speculative decoding
def draft_acceptance(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Draft acceptance rate", "Share of proposed draft tokens the target model accepted. Higher is better:"
        " below ~0.5 the drafts cost more than they save." + ctx.requirement(*engine.SPEC_DECODE),
        units.PercentUnit, [Target(engine.draft_acceptance(ctx.engines), ENGINE)], min_value=0, max_value=1, width=8)


def acceptance_length(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Mean acceptance length", "Tokens produced per draft step (1 + accepted tokens per draft). Higher is"
        " better." + ctx.requirement(*engine.SPEC_DECODE), units.Short,
        [Target(engine.acceptance_length(ctx.engines), ENGINE)], width=8)


def draft_tokens(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Draft and accepted tokens/s", "Draft tokens proposed and accepted per second."
        + ctx.requirement(*engine.SPEC_DECODE), PER_SECOND,
        [Target(engine.spec_rate(ctx.engines, engine.SPEC_DRAFT_TOKENS), f"drafted {ENGINE}"),
         Target(engine.spec_rate(ctx.engines, engine.SPEC_ACCEPTED_TOKENS), f"accepted {ENGINE}")], width=8)


# ------------------------------------------------------------------ layout
def build(ctx: Context) -> Board:
    return (
        Board(common.VLLM_UID, "vLLM serving",
              "Every vLLM metric per model and instance: requests and finish reasons, latency percentiles and"
              " heatmaps, queue, prefill and decode time, tokens, KV cache, preemptions, prefix cache, request"
              " lengths and speculative decoding. Series link to the GPU dashboard of their host.",
              [common.host_variable(ctx, common.ENGINE_SERIES), common.model_variable(ctx),
               common.instance_variable(ctx)])
        .row("Requests").add(engines_up(ctx), requests_total(ctx), error_ratio(ctx), generated_tokens(ctx),
                             requests_by_instance(ctx), finished_by_reason(ctx), error_ratio_by_instance(ctx),
                             http_responses(ctx))
        .row("Latency").add(*latency(ctx), time_per_output_token(ctx))
        .row("Request phases").add(phase_means(ctx), prefill_time(ctx), decode_time(ctx), inference_time(ctx),
                                   tokens_per_step(ctx))
        .row("Scheduler and KV cache").add(running(ctx), waiting(ctx), kv_cache(ctx), preemptions(ctx),
                                           prefix_cache_hits(ctx), cache_config(ctx))
        .row("Tokens and request lengths").add(token_throughput(ctx), request_lengths(ctx), prompt_lengths(ctx),
                                               output_lengths(ctx), parallel_sampling(ctx))
        .row("Speculative decoding").add(draft_acceptance(ctx), acceptance_length(ctx), draft_tokens(ctx))
    )
