"""SLOs and error budgets: per model and SLO, the objective, the budget left, and the burn rates over the
same windows and factors as the multi-window multi-burn-rate alerts (Sloth-style `slo:*` rules). Each
panel is a named function over `llmobs.dashboards.queries.slo`; `build()` lays them out in rows."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models import units

from llmobs import conventions
from llmobs.catalog import AlertWindow
from llmobs.dashboards import common, probe
from llmobs.dashboards.context import Context
from llmobs.dashboards.panels import (
    BAD,
    GOOD,
    WARN,
    Board,
    Column,
    Steps,
    Target,
    merged_table_panel,
    query_variable,
    timeseries_panel,
)
from llmobs.dashboards.queries import slo
from llmobs.promql import selector, variable

SLO_LEGEND = "{{slo}} {{model_name}}"
# Budget left: red when spent, orange under a quarter.
BUDGET_STEPS = Steps(BAD, ((0, WARN), (0.25, GOOD)))
# The SLI error ratio window drawn against the budget.
RECENT = "1h"


def _lowest_factor(ctx: Context, severity: str) -> float:
    """The lowest burn-rate factor of the alert windows of one severity."""
    period = ctx.settings.slo.period
    return min(w.factor(period) for w in ctx.catalog.slos.alert_windows if w.severity == severity)


def _burn_steps(ctx: Context) -> Steps:
    return Steps.rising(_lowest_factor(ctx, "warning"), _lowest_factor(ctx, "critical"))


def _latency_targets(ctx: Context) -> str:
    """The latency target of every model with its own, and the default."""
    targets = ctx.settings.slo
    scopes = [("default", targets.defaults)] + [(model, targets.targets_for(model)) for model in sorted(targets.models)]
    return "; ".join(f"{scope}: TTFT {t.ttft_seconds:g} s, inter-token {t.inter_token_latency_seconds:g} s"
                     for scope, t in scopes)


def variables(ctx: Context) -> list[dash.QueryVariable]:
    """The models with SLO rules, and the SLOs of the selected models."""
    of_models = selector(conventions.SLO_OBJECTIVE, variable("model_name"))
    return [
        query_variable("model_name", "Model", f"label_values({conventions.SLO_OBJECTIVE}, model_name)",
                       "Served model name with SLO rules."),
        query_variable("slo", "SLO", f"label_values({of_models}, slo)",
                       "; ".join(f"{s.name}: {s.meaning}" for s in ctx.catalog.slos.slos)),
    ]


# ------------------------------------------------------------------ now
def slo_table(ctx: Context) -> table.Panel:
    period = ctx.settings.slo.period
    return merged_table_panel(
        "SLOs", f"One row per model and SLO: the objective, the SLI over the {period} period, the share of the"
        " error budget left and the current burn rate (1 = the budget lasts exactly the period). Budget: red when"
        f" spent, orange under 25 %. Burn rate: orange from {_lowest_factor(ctx, 'warning'):g}, red from"
        f" {_lowest_factor(ctx, 'critical'):g} (the lowest warning and critical alert factors). Latency targets: "
        + _latency_targets(ctx) + ".", [
            Column(slo.objective(), "Objective", units.PercentUnit),
            Column(slo.sli(period), f"SLI ({period})", units.PercentUnit),
            Column(slo.budget_remaining(), "Budget left", units.PercentUnit, BUDGET_STEPS),
            Column(slo.current_burn_rate(), "Burn rate", units.Short, _burn_steps(ctx)),
        ], links=[common.model_link()], height=7)


def budget_left(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Error budget left", f"Share of the {ctx.settings.slo.period} error budget left per model and SLO. Good:"
        " above 0 and not falling fast; at 0 the SLO is broken for the period.", units.PercentUnit,
        [Target(slo.budget_remaining(), SLO_LEGEND)], thresholds=BUDGET_STEPS, links=[common.model_link()])


def error_ratio_against_budget(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "SLI error ratio against the budget", "Share of bad events over the last hour per model and SLO, with the"
        " error budget (1 - objective) dashed. Good: under its budget line.", units.PercentUnit,
        [Target(slo.sli_error_ratio(RECENT), SLO_LEGEND), Target(slo.error_budget(), "budget " + SLO_LEGEND)],
        dashed="^budget ", links=[common.model_link()])


# ------------------------------------------------------------------ burn rates
def burn_rate(ctx: Context, window: AlertWindow) -> timeseries.Panel:
    """The burn rates over one alert's long and short windows, with the factor at which it fires."""
    period = ctx.settings.slo.period
    factor = window.factor(period)
    return timeseries_panel(
        f"Burn rate over {window.long} and {window.short} ({window.severity})",
        f"How fast each SLO spends its error budget over {window.long} and {window.short} (error ratio / error"
        f" budget). The {window.severity} alert fires when both lines are above {factor:g} (dashed): at that pace"
        f" {window.budget_consumed:.0%} of the {period} budget is gone in {window.long}. Good: below 1.",
        units.Short, [Target(slo.burn_rate(w), f"{SLO_LEGEND} {w}") for w in (window.long, window.short)],
        thresholds=Steps(GOOD, ((factor, BAD if window.severity == "critical" else WARN),)), min_value=0, width=12)


def burn_rates(ctx: Context) -> list[timeseries.Panel]:
    return [burn_rate(ctx, window) for window in ctx.catalog.slos.alert_windows]


# ------------------------------------------------------------------ layout
def build(ctx: Context) -> Board:
    return (
        Board(common.SLO_UID, "SLOs and error budgets",
              "Per model and SLO (" + ", ".join(s.name for s in ctx.catalog.slos.slos) + "): the objective, how"
              f" much of the {ctx.settings.slo.period} error budget is left, and the burn rates over the windows"
              " the multi-window multi-burn-rate alerts use, with their factors as dashed lines.",
              variables(ctx), time_from="now-24h")
        .row("Now").add(slo_table(ctx), budget_left(ctx), error_ratio_against_budget(ctx))
        .row("Burn rates over the alert windows").add(*burn_rates(ctx))
        .row("From the outside: the endpoint prober").add(*probe.panels(ctx))
    )
