"""SLO burn rates, per SLO and per set of targets (each model with its own, and the defaults): a fast burn
pages (and tickets), a slow burn only tickets; the inter-token SLO also on vLLM's old metric name, the
availability SLO also with requests refused at admission (503) instead of engine errors."""

from __future__ import annotations

from dataclasses import dataclass

from llmobs import conventions
from llmobs.catalog import SloDefinition
from llmobs.conventions import ENGINES, PORTS
from llmobs.rules.slo import SHORTEST, describe_target, error_budget
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
    return [*(burn(fleet, slo, model, case) for slo in fleet.catalog.slos.slos for model in models
              for case in _burns(fleet, slo, model, last=model == models[-1])),
            *(burn(fleet, slo, fleet.default_model(), _burns(fleet, slo, fleet.default_model(), last=False)[0], kind)
              for slo in fleet.catalog.slos.slos for kind in ENGINES[1:] if kind in fleet.catalog.slo_engines(slo)),
            no_slo_without_the_signal(fleet), *slowdown_weighed_by_tokens(fleet)]


def slowdown_weighed_by_tokens(fleet: Fleet) -> list[Scenario]:
    """40 healthy minutes, then a slowdown that cuts the tokens 6x and makes a share q of them late. Weighed by
    the tokens, the long windows see 20/6 slow-phase tokens in 43.3 (per healthy token a minute): 7.7 % of q, a
    burn under the page's lower factor; the mean of the 5m ratios over the hour (a third of it at q) would say
    about 27 % of q, over its higher factor, and page. q sits between the two bounds (their geometric mean),
    from the settings' budget and factors; a budget too large for any q <= 1 gets no such test."""
    slo = next(spec for spec in fleet.catalog.slos.slos if spec.name == "inter_token_latency")
    model = fleet.default_model()
    budget = float(error_budget(slo, fleet.settings.slo.targets_for(model)))
    low, high = min(_factors(fleet, "critical")), max(_factors(fleet, "critical"))
    share = round(budget * (high / 0.27 * low / 0.077) ** 0.5, 6)
    if share > 1:
        return []
    tl = Timeline(60, 61)
    scenario = Scenario(f"{slo.name} SLO of {model}: a slowdown that cuts the tokens is weighed by tokens", tl)
    scenario.series += fleet.vllm_engine(tl, Engine("gpu-node-1", model, PORTS["vllm"], "vllm"),
                                         bad_share={slo.name: 0})
    tokens, fault = 1000 * tl.interval, tl.at(40 * 60)
    histogram = f"{fleet.catalog.slo_histograms(slo, 'vllm')[0]}_bucket"
    for series in scenario.where(lambda s: s.name == histogram):
        late = tokens / 6 * (1 if series.labels["le"] == "+Inf" else 1 - share)
        series.samples = tl.ramp_change(tokens, late, fault)
    selected = f'{{slo="{slo.name}", model_name="{model}"}}'

    def burn(expr: str) -> str:
        return f"{expr} / {budget}"
    # The raw 1h and 6h windows and the summed 1d and 3d ones: between half the lower factor and the factor.
    checks = [f"{burn(conventions.sli_error_ratio(w) + selected)} {op} bool {bound:g}"
              for w in ("1h", "6h", "1d", "3d") for op, bound in ((">", low / 2), ("<", low))]
    checks += [f"{burn(conventions.sli_error_ratio('5m') + selected)} > bool {high:g}",  # the short window burns
               f"{burn(f'avg_over_time({conventions.sli_error_ratio(SHORTEST)}{selected}[1h])')} > bool {high:g}"]
    scenario.expr_tests += [{"expr": check, "eval_time": "60m", "exp_samples": [
        {"labels": f'{{model_name="{model}", slo="{slo.name}"}}', "value": 1}]} for check in checks]
    scenario.expect_none(f'ALERTS{{alertname="{slo.alert}", severity="critical"}}', "60m")
    return [scenario]


def no_slo_without_the_signal(fleet: Fleet) -> Scenario:
    """Engines that lack an SLO's signal get no SLI series for their model, so no burn alert can be
    generated for them (here: llama.cpp, every SLO; TensorRT-LLM, availability)."""
    scenario = Scenario("no SLO series for a model on an engine without the signal", TL)
    for index, kind in enumerate(ENGINES[1:]):
        scenario.series += fleet.engine_series(TL, Engine("gpu-node-1", f"model-{kind}", 9000 + index, kind))
    for slo in fleet.catalog.slos.slos:
        for kind in sorted(set(ENGINES) - fleet.catalog.slo_engines(slo)):
            scenario.expect_none(f'{conventions.sli_error_ratio("5m")}{{slo="{slo.name}", model_name="model-{kind}"}}',
                                 "10m")
    return scenario


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
        if slo.latency and len(fleet.catalog.slo_histograms(slo, "vllm")) > 1:
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


def burn(fleet: Fleet, slo: SloDefinition, model: str, case: Burn, kind: str = "vllm") -> Scenario:
    """A steady burn from the start, on an engine of `kind`: every window sees it once the 5m one is full."""
    targets = fleet.settings.slo.targets_for(model)
    budget = float(error_budget(slo, targets))
    period = fleet.settings.slo.period
    share = round(case.rate * budget, 6)
    scenario = Scenario(f"{slo.name} SLO of {model} on {kind}: {case.title} burn ({case.rate:g}x)", TL)
    engine = Engine("gpu-node-1", model, PORTS[kind], kind)
    scenario.series += (fleet.vllm_engine(TL, engine, old_names=case.old_names, bad_share={slo.name: share})
                        if kind == "vllm" else fleet.engine_series(TL, engine, bad_share={slo.name: share}))
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
