"""SLOs and error budgets: per model and SLO, the objective, the budget left, and the burn rates over the
same windows and factors as the multi-window multi-burn-rate alerts (Sloth-style `slo:*` rules)."""

from __future__ import annotations

from grafana_foundation_sdk.models import units

from llmobs.dashboards.context import SLO_UID, Context
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

SLO_LEGEND = "{{slo}} {{model_name}}"


def build(ctx: Context) -> Board:
    spec = ctx.catalog.slos
    sel = 'model_name=~"$model_name", slo=~"$slo"'
    board = Board(
        SLO_UID, "SLOs and error budgets",
        "Per model and SLO (" + ", ".join(s.name for s in spec.slos) + "): the objective, how much of the"
        f" {ctx.settings.slo.period} error budget is left, and the burn rates over the windows the"
        " multi-window multi-burn-rate alerts use, with their factors as dashed lines.",
        [
            query_variable("model_name", "Model", "label_values(slo:objective:ratio, model_name)",
                           "Served model name with SLO rules."),
            query_variable("slo", "SLO", 'label_values(slo:objective:ratio{model_name=~"$model_name"}, slo)',
                           "; ".join(f"{s.name}: {s.meaning}" for s in spec.slos)),
        ],
        time_from="now-24h",
    )
    windows = spec.alert_windows
    warning_factor = min(w.factor(ctx.settings.slo.period) for w in windows if w.severity == "warning")
    critical_factor = min(w.factor(ctx.settings.slo.period) for w in windows if w.severity == "critical")
    burn_steps = Steps.rising(warning_factor, critical_factor)
    budget_steps = Steps(BAD, ((0, WARN), (0.25, GOOD)))
    period = ctx.settings.slo.period

    board.row("Now")
    board.add(
        merged_table_panel("SLOs", f"One row per model and SLO: the objective, the SLI over the {period} period,"
                           " the share of the error budget left and the current burn rate (1 = the budget lasts"
                           " exactly the period). Budget: red when spent, orange under 25 %. Burn rate: orange"
                           f" from {warning_factor:g}, red from {critical_factor:g} (the lowest warning and"
                           " critical alert factors). Latency targets: " + _targets(ctx) + ".", [
                               Column(f"slo:objective:ratio{{{sel}}}", "Objective", units.PercentUnit),
                               Column(f"1 - slo:sli_error:ratio_rate{period}{{{sel}}}", f"SLI ({period})",
                                      units.PercentUnit),
                               Column(f"slo:period_error_budget_remaining:ratio{{{sel}}}", "Budget left",
                                      units.PercentUnit, budget_steps),
                               Column(f"slo:current_burn_rate:ratio{{{sel}}}", "Burn rate", units.Short,
                                      burn_steps),
                           ], links=[ctx.model_link()], height=7),
        timeseries_panel("Error budget left", f"Share of the {period} error budget left per model and SLO."
                         " Good: above 0 and not falling fast; at 0 the SLO is broken for the period.",
                         units.PercentUnit, [Target(f"slo:period_error_budget_remaining:ratio{{{sel}}}", SLO_LEGEND)],
                         thresholds=budget_steps, links=[ctx.model_link()]),
        timeseries_panel("SLI error ratio against the budget", "Share of bad events over the last hour per"
                         " model and SLO, with the error budget (1 - objective) dashed. Good: under its budget"
                         " line.", units.PercentUnit,
                         [Target(f"slo:sli_error:ratio_rate1h{{{sel}}}", SLO_LEGEND),
                          Target(f"slo:error_budget:ratio{{{sel}}}", "budget " + SLO_LEGEND)],
                         dashed="^budget ", links=[ctx.model_link()]),
    )

    board.row("Burn rates over the alert windows")
    for window in windows:
        factor = window.factor(period)
        colour = BAD if window.severity == "critical" else WARN
        board.add(timeseries_panel(
            f"Burn rate over {window.long} and {window.short} ({window.severity})",
            f"How fast each SLO spends its error budget over {window.long} and {window.short} (error ratio /"
            f" error budget). The {window.severity} alert fires when both lines are above {factor:g} (dashed):"
            f" at that pace {window.budget_consumed:.0%} of the {period} budget is gone in {window.long}."
            " Good: below 1.", units.Short,
            [Target(f"slo:sli_error:ratio_rate{w}{{{sel}}} / on (slo, model_name) slo:error_budget:ratio{{{sel}}}",
                    f"{SLO_LEGEND} {w}") for w in (window.long, window.short)],
            thresholds=Steps(GOOD, ((factor, colour),)), min_value=0, width=12))
    return board


def _targets(ctx: Context) -> str:
    """The latency target of every model with its own, and the default."""
    slo = ctx.settings.slo
    scopes = [("default", slo.defaults)] + [(model, slo.targets_for(model)) for model in sorted(slo.models)]
    return "; ".join(f"{scope}: TTFT {targets.ttft_seconds:g} s, inter-token {targets.inter_token_latency_seconds:g} s"
                     for scope, targets in scopes)
