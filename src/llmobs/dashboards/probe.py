"""The endpoint prober's row of the SLO dashboard: each endpoint as its clients see it (the probe's success,
HTTP status, time to first token against the model's target, inter-chunk gaps and failed probes by result),
beside the engine-side SLOs above it. Panels are named functions over `llmobs.dashboards.queries.probe`."""

from __future__ import annotations

from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models import units

from llmobs.dashboards import common
from llmobs.dashboards.context import Context
from llmobs.dashboards.panels import BAD, GOOD, NEUTRAL, Column, Steps, Target, merged_table_panel, timeseries_panel
from llmobs.dashboards.queries import probe

LEGEND = "{{model_name}} at {{endpoint}}"


def endpoints_table(ctx: Context) -> table.Panel:
    interval = ctx.settings.prober.interval
    return merged_table_panel(
        "Endpoints from the outside", f"One row per endpoint and model, probed every {interval} with a small"
        " streamed chat completion by the endpoint prober: whether the last probe succeeded (red: it failed,"
        " EndpointProbeFailing pages after a minute), its HTTP status (0: no answer), the clients' mean time to"
        " first token against the model's TTFT target, and the tokens of the last answer.", [
            Column(probe.success(), "OK", units.Short, Steps(BAD, ((1, GOOD),))),
            Column(probe.http_status(), "HTTP", units.Short),
            Column(probe.mean_ttft(), "TTFT", units.Seconds),
            Column(probe.ttft_target(), "TTFT target", units.Seconds),
            Column(probe.tokens(), "Tokens", units.Short),
        ], links=[common.model_link()], height=7)


def client_ttft(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Client-side time to first token", "The probes' mean time to first token per endpoint (the alert"
        " averages 5 minutes), with each model's TTFT target (slo ttft_seconds) dashed: EndpointProbeTtftOverSlo"
        " fires above it. A gap between this and the engine's own TTFT is what sits in front of the engine"
        " (proxy, TLS, queue).",
        units.Seconds, [Target(probe.mean_ttft(), LEGEND), Target(probe.ttft_target(), "target {{model_name}}")],
        dashed="^target ", min_value=0, width=8)


def inter_chunk(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Client-side gaps between chunks (p90)", "90th percentile of the time between consecutive content chunks"
        " of the probes' streams: a proxy that buffers the stream shows here.", units.Seconds,
        [Target(probe.inter_chunk_quantile(0.9), LEGEND)], min_value=0, width=8)


def failed_probes(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Failed probes by result", "Probes that failed per endpoint and result: http_error,"
        " unauthorized (a wrong key), unreachable, timeout, malformed (a broken stream), no_key (the prober"
        " cannot read its key file). Good: none.", units.Short,
        [Target(probe.failures(), LEGEND + " {{result}}")], thresholds=NEUTRAL, bars=True, min_value=0, width=8)


def panels(ctx: Context) -> list:
    return [endpoints_table(ctx), client_ttft(ctx), inter_chunk(ctx), failed_probes(ctx)]
