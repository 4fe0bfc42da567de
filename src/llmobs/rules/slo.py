"""Sloth-style SLO rules per model: error ratios over the SLI windows, the SLO meta series and the
multi-window multi-burn-rate alerts, from catalog/slos.yaml and the settings' per-model targets.

Models with their own targets (`slo.models`) get rules selecting `model_name="<model>"`; every other
model is covered by one set of rules with the default targets (`model_name!~"<those models>"`), so a
new model is measured from its first request without changing the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from llmobs import conventions as names
from llmobs import promql
from llmobs.catalog import Severity, SloCatalog, SloDefinition
from llmobs.promql import MatcherLike, selector
from llmobs.rules.alerts import alerting_rule
from llmobs.rules.models import AlertingRule, RecordingRule, RuleGroup
from llmobs.settings import Settings, SloTargets
from llmobs.types import duration_seconds

PAGE = names.SLO_BURN_PAGE
SHORTEST = names.SLI_EVENTS_WINDOW  # the window of the recorded event rates (slos.yaml sli_windows starts with it)
RAW_UP_TO = "6h"  # windows up to this one (every page window) read the raw series; longer ones sum the 5m rates


@dataclass(frozen=True)
class Scope:
    """The models one set of SLO rules covers and their targets."""

    matcher: MatcherLike  # e.g. model_name="m" or model_name!~"m1|m2"; empty: every model
    targets: SloTargets
    model: str | None = None  # the one model of a per-model scope

    def labels(self, slo: SloDefinition) -> dict[str, str]:
        """Static rule labels: they keep the rules of each SLO and scope distinct (promtool's lint)."""
        return {"slo": slo.name, **({"model_name": self.model} if self.model else {})}

    def select(self, metric: str, *matchers: MatcherLike) -> str:
        """`metric{matchers..., scope}`."""
        return selector(metric, *matchers, self.matcher)


def scopes(settings: Settings) -> list[Scope]:
    models = sorted(settings.slo.models)
    result = [Scope(promql.eq("model_name", m), settings.slo.targets_for(m), m) for m in models]
    result.append(Scope(promql.none_of("model_name", models) if models else "", settings.slo.defaults))
    return result


def _decimal(value: float) -> str:
    return format(Decimal(str(value)).normalize(), "f")


def error_budget(slo: SloDefinition, targets: SloTargets) -> str:
    return _decimal(float(Decimal(1) - Decimal(str(getattr(targets, slo.objective)))))


def sli_events(slo: SloDefinition, scope: Scope, window: str = SHORTEST) -> tuple[str, str]:
    """(bad, total): the SLO's bad and total events per second over `window`, per model_name, from the raw series."""
    if slo.ratio:
        metric, errors = slo.ratio.metric, slo.ratio.error_matchers
        total = f"sum by (model_name) (rate({scope.select(metric)}[{window}]))"
        failed = f"(\n  sum by (model_name) (rate({scope.select(metric, errors)}[{window}]))\n  or {total} * 0\n)"
        if not slo.ratio.refused:
            return failed, total
        # Refused requests never reach `metric`: failures, and requests, on top of it.
        refused = f"(\n  sum by (model_name) (rate({scope.select(slo.ratio.refused)}[{window}]))\n  or {total} * 0\n)"
        return f"{failed}\n+\n{refused}", f"{total}\n+\n{refused}"
    threshold = getattr(scope.targets, slo.latency.threshold)

    def bucket_rate(le: float | str) -> str:
        sources = " or ".join(f"rate({scope.select(f'{h}_bucket', promql.le(le))}[{window}])"
                              for h in slo.latency.histograms)
        return f"sum by (model_name) ({sources})"

    total = bucket_rate("+Inf")
    return f"{total}\n-\n{bucket_rate(threshold)}", total


def sli_window_expr(slo: SloDefinition, scope: Scope, window: str) -> str:
    """The error ratio over `window`. 5m: the recorded 5m rates of bad over total events. Up to RAW_UP_TO (the
    page's windows, 30m to 6h): the raw series' rates. Beyond (1d, 3d, the period): the ratio of the sums of the
    recorded 5m rates over the window, so no rule reads days of raw buckets at each evaluation (docs/performance.md),
    still weighted by the events (a mean of 5m ratios overstates the burn of a fault that also cuts the tokens).
    The sums lag the raw rates by up to 5 minutes: noise over days, but in a page window it delays the page and
    with it the repair (the lab's ITL fault then burnt twice as long and never resolved in its campaign)."""
    if window == SHORTEST:
        return f"{_mine(slo, scope, names.SLI_BAD_EVENTS)}\n/\n({_mine(slo, scope, names.SLI_EVENTS)} > 0)"
    if duration_seconds(window) <= duration_seconds(RAW_UP_TO):
        bad, total = sli_events(slo, scope, window)
        return f"(\n{bad}\n)\n/\n(\n{total}\n> 0)"
    bad, total = _mine(slo, scope, names.SLI_BAD_EVENTS), _mine(slo, scope, names.SLI_EVENTS)
    return f"sum_over_time({bad}[{window}])\n/\n(sum_over_time({total}[{window}]) > 0)"


def describe_target(slo: SloDefinition, targets: SloTargets) -> str:
    """The objective in words, e.g. `99 % of requests within 1 s`."""
    objective = f"{getattr(targets, slo.objective) * 100:g} %"
    if slo.latency:
        return f"objective {objective} of {slo.latency.events} within {getattr(targets, slo.latency.threshold):g} s"
    return f"objective {objective} of {slo.ratio.events}"


def _ratio(slo: SloDefinition, scope: Scope, window: str) -> str:
    """The SLO's recorded error ratio over `window`, for the scope's models."""
    return _mine(slo, scope, names.sli_error_ratio(window))


def _mine(slo: SloDefinition, scope: Scope, metric: str) -> str:
    return scope.select(metric, promql.eq("slo", slo.name))


def _meta_rules(slo: SloDefinition, scope: Scope, period: str) -> list[tuple[str, str]]:
    """(record, expr) of the SLO's meta series: the period's ratio, objective, budget and burn rates."""
    def mine(metric: str) -> str:
        return _mine(slo, scope, metric)

    budget = error_budget(slo, scope.targets)
    objective = _decimal(getattr(scope.targets, slo.objective))
    ratio_5m, ratio_period = names.sli_error_ratio(SHORTEST), names.sli_error_ratio(period)
    return [
        (ratio_period, sli_window_expr(slo, scope, period)),
        (names.SLO_OBJECTIVE, f"{mine(ratio_period)} * 0 + {objective}"),
        (names.SLO_ERROR_BUDGET, f"{mine(ratio_period)} * 0 + {budget}"),
        (names.SLO_CURRENT_BURN_RATE, f"{mine(ratio_5m)} / {budget}"),
        (names.SLO_PERIOD_BURN_RATE, f"{mine(ratio_period)} / {budget}"),
        (names.SLO_PERIOD_BUDGET_REMAINING, f"1 - {mine(names.SLO_PERIOD_BURN_RATE)}"),
    ]


def recording_groups(settings: Settings, spec: SloCatalog) -> list[RuleGroup]:
    """Per SLO: the error ratios over the SLI windows, then the meta series, for every scope."""
    period = settings.slo.period
    groups = []
    for slo in spec.slos:
        sli: list[RecordingRule] = []
        meta: list[RecordingRule] = []
        for scope in scopes(settings):
            labels = scope.labels(slo)
            bad, total = sli_events(slo, scope)
            sli += [RecordingRule(record=names.SLI_BAD_EVENTS, expr=bad, labels=labels),
                    RecordingRule(record=names.SLI_EVENTS, expr=total, labels=labels)]
            sli += [RecordingRule(record=names.sli_error_ratio(window), expr=sli_window_expr(slo, scope, window),
                                  labels=labels) for window in spec.sli_windows]
            meta += [RecordingRule(record=record, expr=expr, labels=labels)
                     for record, expr in _meta_rules(slo, scope, period)]
        groups.append(RuleGroup(name=names.slo_sli_group(slo.name), rules=tuple(sli)))
        groups.append(RuleGroup(name=names.slo_meta_group(slo.name), rules=tuple(meta)))
    return groups


def alert_groups(settings: Settings, spec: SloCatalog) -> list[RuleGroup]:
    """The multi-window multi-burn-rate alerts: one rule per SLO, scope and severity."""
    rules = [rule for slo in spec.slos for scope in scopes(settings) for severity in ("critical", "warning")
             if (rule := burn_alert(settings, spec, slo, scope, severity))]
    return [RuleGroup(name=names.alert_group(PAGE), rules=tuple(rules))] if rules else []


def burn_alert(settings: Settings, spec: SloCatalog, slo: SloDefinition, scope: Scope,
               severity: Severity) -> AlertingRule | None:
    """Fires when both windows of any of the severity's window pairs burn faster than its factor."""
    period = settings.slo.period
    budget = error_budget(slo, scope.targets)
    windows = [w for w in spec.alert_windows if w.severity == severity]
    branches = [
        f"(\n  {_ratio(slo, scope, w.short)} / {budget} > {w.factor(period):g}\n"
        f"  and\n  {_ratio(slo, scope, w.long)} / {budget} > {w.factor(period):g}\n)"
        for w in windows
    ]
    pace = " or ".join(f"{w.factor(period):g}x over {w.long} and {w.short}" for w in windows)
    return alerting_rule(
        settings, slo.alert, severity, default_for="0s", component="slo", page=PAGE,
        expr="\nor\n".join(branches),
        summary=f"{{{{ $labels.model_name }}}} burns its {slo.title.lower()} error budget",
        description=f"{{{{ $labels.model_name }}}} spends its {slo.title.lower()} error budget"
                    f" {{{{ $value | printf \"%.1f\" }}}} times as fast as the {period} objective allows"
                    f" ({describe_target(slo, scope.targets)}). {severity.capitalize()} above {pace}.",
        labels=scope.labels(slo))
