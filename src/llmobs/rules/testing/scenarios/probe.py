"""The endpoint prober's alerts: a busy, healthy engine whose own metrics stay fine while, from 2m, what is in
front of it answers 503 (EndpointProbeFailing pages) or holds each answer before its first token (the clients'
TTFT goes over the model's target: EndpointProbeTtftOverSlo pages), and no engine alert fires."""

from __future__ import annotations

from llmobs import conventions
from llmobs.conventions import PORTS
from llmobs.rules.alerts import override_for
from llmobs.rules.testing.fleet import Engine, Fleet
from llmobs.rules.testing.promtool import Scenario, Series, Timeline, alert_test, fires
from llmobs.types import duration_seconds

TL = Timeline(10, 121)
INJECT = TL.at(120)
# The engine alerts that a fault in front of the engine must not raise (its own metrics look fine).
ENGINE_ALERTS = ("VllmEngineDown", "VllmEngineStuck", "VllmErrorRatioHigh")


def scenarios(fleet: Fleet) -> list[Scenario]:
    return [failing_in_front(fleet), stalled_in_front(fleet)]


def _probed(fleet: Fleet, name: str) -> tuple[Scenario, Engine, dict[str, str]]:
    """A busy vLLM engine on two H100s, probed every 10 s by the prober of monitor-1."""
    scenario = Scenario(name, TL)
    series, _, engine = fleet.busy_host(TL, "gpu-node-1", 2, "H100-SXM", fleet.default_model(), parts=("vllm",))
    scenario.series += series
    prober = fleet.target("prober", conventions.COMPOSE_SERVICES["prober"], PORTS["prober"], "monitor-1")
    labels = {**prober, fleet.host: engine.host, "endpoint": engine.instance, "model_name": engine.model_name,
              "inference_engine": "vllm"}
    target = fleet.settings.slo.targets_for(engine.model_name).ttft_seconds
    scenario.series += [
        Series(conventions.PROBE_SUCCESS, labels, TL.flat(1)),
        Series(conventions.PROBE_HTTP_STATUS, labels, TL.flat(200)),
        # One probe per sample, first token after 0.2 s, until the fault.
        Series(f"{conventions.PROBE_TTFT}_count", labels, TL.ramp(1)),
        Series(f"{conventions.PROBE_TTFT}_sum", labels, TL.ramp(0.2)),
        Series(conventions.PROBE_TTFT_TARGET, {"model_name": engine.model_name}, TL.flat(target)),
    ]
    return scenario, engine, labels


def _expected(fleet: Fleet, engine: Engine, alert: str, summary: str, description: str) -> dict:
    labels = {fleet.host: engine.host, "endpoint": engine.instance, "instance": engine.instance,
              "model_name": engine.model_name, "inference_engine": "vllm"}
    return fleet.expect(alert, "critical", labels, summary, description)


def _engine_quiet(scenario: Scenario, at: str) -> None:
    scenario.alert_tests += [alert_test(at, alert) for alert in ENGINE_ALERTS]


def failing_in_front(fleet: Fleet) -> Scenario:
    scenario, engine, labels = _probed(fleet, "a proxy in front of a healthy engine answers 503: the prober pages")
    scenario.set(conventions.PROBE_SUCCESS, TL.change(1, 0, INJECT), **labels)
    scenario.set(conventions.PROBE_HTTP_STATUS, TL.change(200, 503, INJECT), **labels)
    count = scenario.find(f"{conventions.PROBE_TTFT}_count", **labels)
    count.samples = [*count.samples[:INJECT], *[count.samples[INJECT - 1]] * (TL.steps - INJECT)]
    total = scenario.find(f"{conventions.PROBE_TTFT}_sum", **labels)
    total.samples = [*total.samples[:INJECT], *[total.samples[INJECT - 1]] * (TL.steps - INJECT)]
    host = engine.host
    scenario.alert_tests += fires("EndpointProbeFailing", "2m50s", "3m20s", _expected(
        fleet, engine, "EndpointProbeFailing", f"{engine.model_name} at {engine.instance} fails for its clients",
        f"Probes of {engine.model_name} at {engine.instance} ({host}, vllm) get no complete, well-formed streamed"
        " answer (last HTTP status 503, 0 for none); the prober's llmobs_probes_total says why."))
    _engine_quiet(scenario, "3m20s")
    return scenario


def stalled_in_front(fleet: Fleet) -> Scenario:
    """From 2m every probe's first token comes after 2.5 x the target: the 5-minute mean crosses the target
    once more than a third of the window's probes are slow (about 4m at 0.2 s and 2.5 x 1 s): silent at 3m30s,
    firing once its `for` has passed and the window holds only slow probes (its value then is the same on
    both promtools, whose range selectors differ at the window's left end)."""
    scenario, engine, labels = _probed(fleet, "a stall in front of a healthy engine: the clients' TTFT pages")
    target = fleet.settings.slo.targets_for(engine.model_name).ttft_seconds
    slow = 2.5 * target
    scenario.set(f"{conventions.PROBE_TTFT}_sum", TL.ramp_change(0.2, slow, INJECT, start=0.2), **labels)
    duration, _ = override_for(fleet.settings, "EndpointProbeTtftOverSlo", "critical")
    rule = next(r for r in fleet.catalog.alert_rules() if r.alert == "EndpointProbeTtftOverSlo")
    firing = max(240 + duration_seconds(duration or rule.for_) + 60, 450)
    host = engine.host
    scenario.alert_tests += fires("EndpointProbeTtftOverSlo", "3m30s", f"{int(firing)}s", _expected(
        fleet, engine, "EndpointProbeTtftOverSlo",
        f"Clients of {engine.model_name} at {engine.instance} wait over its TTFT target",
        f"The probes of {engine.model_name} at {engine.instance} ({host}) got their first token after"
        f" {slow:.2f}s on average over 5 minutes, over the model's TTFT target."))
    _engine_quiet(scenario, f"{int(firing)}s")
    return scenario
