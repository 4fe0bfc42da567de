"""Sloth-style SLO rules per model: error ratios over the SLI windows, the SLO meta series and the
multi-window multi-burn-rate alerts, from catalog/slos.yaml and the settings' per-model targets.

Models with their own targets (`slo.models`) get rules selecting `model_name="<model>"`; every other
model is covered by one set of rules with the default targets (`model_name!~"<those models>"`), so a
new model is measured from its first request without changing the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from llmobs import catalog as catalog_mod
from llmobs.catalog import AlertRule, SloCatalog, SloDefinition
from llmobs.rules import promql
from llmobs.rules.alerts import alert_rule
from llmobs.settings import Settings, SloTargets, load_settings

PAGE = "slo-burn"
RATIO = "slo:sli_error:ratio_rate"


def load_spec() -> SloCatalog:
    """The SLO definitions and alert windows of the catalog."""
    return catalog_mod.load().slos


def recorded_names(settings: Settings | None = None) -> list[str]:
    """Every `slo:*` series the SLO rules record (for the settings' SLO period)."""
    return load_spec().recorded_names((settings or load_settings()).slo.period)


@dataclass(frozen=True)
class Scope:
    """The models one set of SLO rules covers and their targets."""

    matcher: str  # e.g. model_name="m" or model_name!~"m1|m2"; empty: every model
    targets: SloTargets
    model: str | None = None  # the one model of a per-model scope

    def labels(self, slo: SloDefinition) -> dict[str, str]:
        """Static rule labels: they keep the rules of each SLO and scope distinct (promtool's lint)."""
        return {"slo": slo.name, **({"model_name": self.model} if self.model else {})}

    def selector(self, *matchers: str) -> str:
        given = [m for m in (*matchers, self.matcher) if m]
        return "{" + ", ".join(given) + "}" if given else ""


def scopes(settings: Settings) -> list[Scope]:
    models = sorted(settings.slo.models)
    result = [Scope(f"model_name={promql.string(m)}", settings.slo.targets_for(m), m) for m in models]
    result.append(Scope(f"model_name!~{promql.regex_alternatives(models)}" if models else "", settings.slo.defaults))
    return result


def _decimal(value: float) -> str:
    return format(Decimal(str(value)).normalize(), "f")


def error_budget(slo: SloDefinition, targets: SloTargets) -> str:
    return _decimal(float(Decimal(1) - Decimal(str(getattr(targets, slo.objective)))))


def sli_expr(slo: SloDefinition, scope: Scope, window: str) -> str:
    """Error ratio of the SLO over `window`, per model_name."""
    if slo.ratio:
        metric, errors = slo.ratio.metric, slo.ratio.error_matchers
        total = f"sum by (model_name) (rate({metric}{scope.selector()}[{window}]))"
        return (f"(\n  sum by (model_name) (rate({metric}{scope.selector(errors)}[{window}]))\n  or {total} * 0\n)\n"
                f"/\n({total} > 0)")
    threshold = getattr(scope.targets, slo.latency.threshold)

    def bucket_rate(le: str) -> str:
        sources = " or ".join(f"rate({h}_bucket{scope.selector(le)}[{window}])" for h in slo.latency.histograms)
        return f"sum by (model_name) ({sources})"

    good = bucket_rate(f"le=~{promql.le_regex(threshold)}")
    total = bucket_rate('le="+Inf"')
    return f"1 - (\n  {good}\n  /\n  ({total} > 0)\n)"


def describe_target(slo: SloDefinition, targets: SloTargets) -> str:
    """The objective in words, e.g. `99 % of requests within 1 s`."""
    objective = f"{getattr(targets, slo.objective) * 100:g} %"
    if slo.latency:
        return f"objective {objective} of {slo.latency.events} within {getattr(targets, slo.latency.threshold):g} s"
    return f"objective {objective} of {slo.ratio.events}"


def recording_groups(settings: Settings, spec: SloCatalog) -> list[dict[str, Any]]:
    period = settings.slo.period
    groups = []
    for slo in spec.slos:
        sli, meta = [], []
        for scope in scopes(settings):
            labels = scope.labels(slo)
            for window in spec.sli_windows:
                sli.append({"record": f"{RATIO}{window}", "expr": sli_expr(slo, scope, window), "labels": labels})
            mine = scope.selector(f"slo={promql.string(slo.name)}")
            budget = error_budget(slo, scope.targets)
            objective = _decimal(getattr(scope.targets, slo.objective))
            meta += [{"record": record, "expr": expr, "labels": labels} for record, expr in (
                (f"{RATIO}{period}", f"avg_over_time({RATIO}5m{mine}[{period}])"),
                ("slo:objective:ratio", f"{RATIO}{period}{mine} * 0 + {objective}"),
                ("slo:error_budget:ratio", f"{RATIO}{period}{mine} * 0 + {budget}"),
                ("slo:current_burn_rate:ratio", f"{RATIO}5m{mine} / {budget}"),
                ("slo:period_burn_rate:ratio", f"{RATIO}{period}{mine} / {budget}"),
                ("slo:period_error_budget_remaining:ratio", f"1 - slo:period_burn_rate:ratio{mine}"),
            )]
        groups.append({"name": f"llmobs.slo.{slo.name}.sli", "rules": sli})
        groups.append({"name": f"llmobs.slo.{slo.name}.meta", "rules": meta})
    return groups


def alert_groups(settings: Settings, spec: SloCatalog) -> list[dict[str, Any]]:
    period = settings.slo.period
    rules = []
    for slo in spec.slos:
        for scope in scopes(settings):
            mine = scope.selector(f"slo={promql.string(slo.name)}")
            budget = error_budget(slo, scope.targets)
            for severity in ("critical", "warning"):
                windows = [w for w in spec.alert_windows if w.severity == severity]
                branches = [
                    f"(\n  {RATIO}{w.short}{mine} / {budget} > {w.factor(period):g}\n"
                    f"  and\n  {RATIO}{w.long}{mine} / {budget} > {w.factor(period):g}\n)"
                    for w in windows
                ]
                pace = " or ".join(f"{w.factor(period):g}x over {w.long} and {w.short}" for w in windows)
                rule = AlertRule(alert=slo.alert, severity=severity, expr="", summary="", description="",
                                 **{"for": "0s"})
                rendered = alert_rule(
                    settings, rule, "slo", PAGE, "\nor\n".join(branches),
                    f"{{{{ $labels.model_name }}}} burns its {slo.title.lower()} error budget",
                    f"{{{{ $labels.model_name }}}} spends its {slo.title.lower()} error budget"
                    f" {{{{ $value | printf \"%.1f\" }}}} times as fast as the {period} objective allows"
                    f" ({describe_target(slo, scope.targets)}). {severity.capitalize()}"
                    f" above {pace}.",
                )
                if rendered:
                    rendered["labels"].update(scope.labels(slo))
                    rules.append(rendered)
    return [{"name": "llmobs.alerts.slo-burn", "rules": rules}] if rules else []
