"""SLO burn rates, per SLO and per set of targets (each model with its own, and the defaults): a fast burn
pages (and tickets), a slow burn only tickets; the inter-token SLO also on vLLM's old metric name, the
availability SLO also with requests refused at admission (503) instead of engine errors."""

from __future__ import annotations

from dataclasses import dataclass

from llmobs import conventions
from llmobs.catalog import SloDefinition
from llmobs.rules.slo import describe_target, error_budget
from llmobs.rules.testing.fleet import Engine, Fleet
from llmobs.rules.testing.promtool import Scenario, Timeline, alert_test

TL = Timeline(60, 41)


@dataclass(frozen=True)
class Burn:
    title: str  # "fast", "slow", ...
    rate: float  # burn rate: the share of bad events over the error budget
    severities: tuple[str, ...]  # the alerts it raises
    old_names: bool = False
    refused: bool = False  # the bad events are requests refused at admission (503), not engine errors


def scenarios(fleet: Fleet) -> list[Scenario]:
    models = [*sorted(fleet.settings.slo.models), fleet.default_model()]
    return [burn(fleet, slo, model, case) for slo in fleet.catalog.slos.slos for model in models
            for case in _burns(fleet, slo, model, last=model == models[-1])]


def _factors(fleet: Fleet, severity: str) -> list[float]:
    period = fleet.settings.slo.period
    return [w.factor(period) for w in fleet.catalog.slos.alert_windows if w.severity == severity]


def _burns(fleet: Fleet, slo: SloDefinition, model: str, last: bool) -> list[Burn]:
    """A fast burn for every model; for the last (default targets) also a slow one and the old names."""
    budget = float(error_budget(slo, fleet.settings.slo.targets_for(model)))
    page = _factors(fleet, "critical")
    # Twice the page factor, or halfway to the highest burn the budget allows (every event bad).
    ceiling = 1 / budget
    factor = max(page) if ceiling > max(page) else min(page)
    fast = round(min(2 * factor, (ceiling + factor) / 2), 4)
    cases = [Burn("fast", fast, ("critical", "warning"))]
    if last:
        cases.append(Burn("slow", (max(_factors(fleet, "warning")) + min(page)) / 2, ("warning",)))
        if slo.latency and len(slo.latency.histograms) > 1:
            cases.append(Burn("fast, vLLM < 0.11 names", fast, ("critical", "warning"), old_names=True))
        if slo.ratio and slo.ratio.refused:
            cases.append(Burn("fast, refused at admission (503)", fast, ("critical", "warning"), refused=True))
    return cases


def _refuse_instead_of_failing(scenario: Scenario, share: float) -> None:
    """No engine error; `share` of the requests (finished plus refused) refused at admission."""
    finished = 10 * TL.interval
    scenario.set("vllm:request_success_total", TL.ramp(finished * 0.95), finished_reason="stop")
    scenario.set("vllm:request_success_total", TL.ramp(0), finished_reason="error")
    scenario.set("vllm:admission_rejections_total", TL.ramp(finished * share / (1 - share)),
                 reason="max_num_queued_reqs")


def burn(fleet: Fleet, slo: SloDefinition, model: str, case: Burn) -> Scenario:
    """A steady burn from the start: every window sees it once the 5m one is full."""
    targets = fleet.settings.slo.targets_for(model)
    budget = float(error_budget(slo, targets))
    period = fleet.settings.slo.period
    share = round(case.rate * budget, 6)
    scenario = Scenario(f"{slo.name} SLO of {model}: {case.title} burn ({case.rate:g}x)", TL)
    scenario.series += fleet.vllm_engine(TL, Engine("gpu-node-1", model), old_names=case.old_names,
                                     bad_share={slo.name: share})
    if case.refused:
        _refuse_instead_of_failing(scenario, share)
    expected = [fleet.expect(
        slo.alert, severity, {"slo": slo.name, "model_name": model},
        f"{model} burns its {slo.title.lower()} error budget",
        f"{model} spends its {slo.title.lower()} error budget {share / budget:.1f} times as fast as the "
        f"{period} objective allows ({describe_target(slo, targets)}). {severity.capitalize()} above "
        + " or ".join(f"{w.factor(period):g}x over {w.long} and {w.short}"
                      for w in fleet.catalog.slos.alert_windows if w.severity == severity) + ".",
    ) for severity in case.severities]
    scenario.alert_tests += [alert_test("10m", slo.alert, *expected)]
    if case.title == "fast":
        labels = {"model_name": model, "slo": slo.name}
        for record, value in ((conventions.SLO_OBJECTIVE, getattr(targets, slo.objective)),
                              (conventions.SLO_ERROR_BUDGET, budget), (conventions.SLO_CURRENT_BURN_RATE, case.rate),
                              (conventions.sli_error_ratio("1h"), share)):
            scenario.expect_value(f'{record}{{slo="{slo.name}"}}', "10m", labels, value)
    return scenario
