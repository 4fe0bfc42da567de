"""vLLM engine faults: down (with and without the inventory), stuck, a backlog (and a queue of deferred
requests, which is none), a full KV cache with and without preemptions (on both metric generations),
failing requests and requests refused at admission. Faults start at 2m."""

from __future__ import annotations

from typing import Any

from llmobs.conventions import ENGINE_GPU_INFO
from llmobs.rules.testing.fleet import Engine, Fleet
from llmobs.rules.testing.promtool import Scenario, Series, Timeline, alert_test, fires, percent
from llmobs.types import duration_seconds

TL = Timeline(10, 121)
INJECT = TL.at(120)


def scenarios(fleet: Fleet) -> list[Scenario]:
    return [engine_down(fleet, inventory=True), engine_down(fleet, inventory=False), engine_never_answered(fleet),
            engine_stuck(fleet), queue_backlog(fleet, old_names=False), queue_backlog(fleet, old_names=True),
            deferred_queue(fleet), kv_cache_saturated(fleet, old_names=False),
            kv_cache_saturated(fleet, old_names=True), kv_cache_full_without_preemptions(fleet),
            error_ratio(fleet, "warning"), error_ratio(fleet, "critical"), admission_refusals(fleet)]


def _fault(fleet: Fleet, name: str, inventory: bool = True) -> tuple[Scenario, Engine]:
    """A busy vLLM engine on two H100s, with its llmobs:engine_gpu:info series unless not in the inventory."""
    scenario = Scenario(name, TL)
    series, _, engine = fleet.busy_host(TL, "gpu-node-1", 2, "H100-SXM", fleet.default_model(), parts=("vllm",))
    scenario.series += [s for s in series if inventory or s.name != ENGINE_GPU_INFO]
    return scenario, engine


def _kv_usage(fleet: Fleet) -> float:
    """A KV cache usage above the warning threshold."""
    return round((1 + fleet.t.kv_cache_usage_warning) / 2, 4)


def _down_expectation(fleet: Fleet, engine: Engine, model_name: str | None) -> dict[str, Any]:
    labels = {fleet.host: engine.host, "instance": engine.instance, "job": fleet.jobs.vllm}
    if model_name:
        labels["model_name"] = model_name
    return fleet.expect("VllmEngineDown", "critical", labels,
                    f"vLLM engine {engine.instance} on {engine.host} is down",
                    f"Prometheus cannot scrape the vLLM engine {engine.instance} on {engine.host} "
                    f"(model: {model_name or 'unknown'}).")


def engine_down(fleet: Fleet, inventory: bool) -> Scenario:
    title = "model from the inventory" if inventory else "model from its last scrape"
    scenario, engine = _fault(fleet, f"vLLM engine down, {title}", inventory)
    for s in scenario.where(lambda s: s.name.startswith("vllm:") and s.labels["instance"] == engine.instance):
        s.stop(INJECT)
    scenario.set("up", TL.change(1, 0, INJECT), job=fleet.jobs.vllm, instance=engine.instance)
    expected = _down_expectation(fleet, engine, fleet.default_model())
    scenario.alert_tests += [*fires("VllmEngineDown", "2m50s", "3m20s", expected),
                             alert_test("6m", "VllmEngineDown", expected)]
    return scenario


def engine_never_answered(fleet: Fleet) -> Scenario:
    scenario = Scenario("vLLM engine that never answered and is not in the inventory", TL)
    engine = Engine("gpu-node-9", fleet.default_model())
    scenario.series.append(Series("up", {"instance": engine.instance, "job": fleet.jobs.vllm, fleet.host: engine.host},
                                  TL.flat(0)))
    scenario.alert_tests.append(alert_test("2m", "VllmEngineDown", _down_expectation(fleet, engine, None)))
    return scenario


def engine_stuck(fleet: Fleet) -> Scenario:
    scenario, engine = _fault(fleet, "vLLM engine stuck: requests in flight, no tokens")
    scenario.set("vllm:generation_tokens_total", TL.ramp_change(30000, 0, INJECT))
    scenario.set("vllm:num_requests_running", TL.flat(30))
    scenario.set("vllm:num_requests_waiting", TL.change(2, 10, INJECT))
    window = duration_seconds(fleet.t.engine_stuck_window)
    firing = 120 - TL.interval + window + 60  # last token at 1m50s, then the window, then `for`
    scenario.alert_tests += fires("VllmEngineStuck", f"{int(firing - 20)}s", f"{int(firing + 10)}s", fleet.expect(
        "VllmEngineStuck", "critical", fleet.engine_labels(engine),
        f"vLLM engine {engine.instance} ({engine.model_name}) generates no tokens",
        f"{engine.ref()} has 40 request(s) running or waiting but generated no token in the last "
        f"{fleet.t.engine_stuck_window}."))
    return scenario


def queue_backlog(fleet: Fleet, old_names: bool) -> Scenario:
    """Requests wait for capacity: vLLM 0.33 reports them by reason, vLLM < 0.11 only as the whole queue."""
    waiting = fleet.t.queue_waiting_requests_warning + 30
    scenario = Scenario(f"requests pile up in the queue ({'vLLM < 0.11' if old_names else 'vLLM 0.33'})", TL)
    engine = Engine("gpu-node-1", fleet.default_model())
    scenario.series += fleet.vllm_engine(TL, engine, old_names=old_names)
    scenario.set("vllm:num_requests_waiting", TL.change(2, waiting, INJECT))
    if not old_names:
        scenario.set("vllm:num_requests_waiting_by_reason", TL.change(2, waiting, INJECT), reason="capacity")
    expected = fleet.expect(
        "VllmQueueBacklog", "warning", fleet.engine_labels(engine),
        f"Requests pile up on vLLM engine {engine.instance} ({engine.model_name})",
        f"{engine.ref()} has {waiting} request(s) waiting for capacity (warning above "
        f"{fleet.t.queue_waiting_requests_warning} for 5 minutes).")
    scenario.alert_tests += fires("VllmQueueBacklog", "6m50s", "7m20s", expected)
    return scenario


def deferred_queue(fleet: Fleet) -> Scenario:
    """A long queue of requests deferred for a LoRA budget or a KV transfer is not saturation."""
    deferred = fleet.t.queue_waiting_requests_warning + 30
    scenario, _ = _fault(fleet, "a queue of deferred requests alone stays silent")
    scenario.set("vllm:num_requests_waiting", TL.change(2, 2 + deferred, INJECT))
    scenario.set("vllm:num_requests_waiting_by_reason", TL.change(0, deferred, INJECT), reason="deferred")
    scenario.alert_tests += [alert_test(t, "VllmQueueBacklog") for t in ("7m20s", "10m")]
    return scenario


def kv_cache_saturated(fleet: Fleet, old_names: bool) -> Scenario:
    usage, preemptions = _kv_usage(fleet), fleet.t.preemptions_per_second_warning * 4
    scenario = Scenario(f"KV cache full with preemptions ({'vLLM < 0.11 names' if old_names else 'vLLM V1'})", TL)
    engine = Engine("gpu-node-1", fleet.default_model())
    scenario.series += fleet.vllm_engine(TL, engine, old_names=old_names)
    kv = "vllm:gpu_cache_usage_perc" if old_names else "vllm:kv_cache_usage_perc"
    scenario.set(kv, TL.change(0.82, usage, INJECT))
    scenario.set("vllm:num_preemptions_total", TL.ramp_change(1, preemptions * TL.interval, INJECT))
    scenario.alert_tests += fires("VllmKvCacheSaturated", "7m", "9m", fleet.expect(
        "VllmKvCacheSaturated", "warning", fleet.engine_labels(engine),
        f"KV cache of vLLM engine {engine.instance} ({engine.model_name}) is full",
        f"{engine.ref()} uses {percent(usage)} of its KV cache and preempts more than "
        f"{fleet.t.preemptions_per_second_warning:g} request(s) per second."))
    return scenario


def kv_cache_full_without_preemptions(fleet: Fleet) -> Scenario:
    scenario, _ = _fault(fleet, "KV cache full without preemptions is healthy")
    scenario.set("vllm:kv_cache_usage_perc", TL.flat(_kv_usage(fleet)))
    scenario.alert_tests.append(alert_test("9m", "VllmKvCacheSaturated"))
    return scenario


def error_ratio(fleet: Fleet, severity: str) -> Scenario:
    """Twice the severity's error ratio: the critical case raises the warning too."""
    share = (fleet.t.engine_error_ratio_warning * 2 if severity == "warning"
             else min(0.9, fleet.t.engine_error_ratio_critical * 2))
    scenario = Scenario(f"vLLM engine fails {percent(share)} of its requests", TL)
    engine = Engine("gpu-node-1", fleet.default_model())
    scenario.series += fleet.vllm_engine(TL, engine)
    requests = 10 * TL.interval
    scenario.set("vllm:request_success_total", TL.ramp(requests * (0.95 - share)), finished_reason="stop")
    scenario.set("vllm:request_success_total", TL.ramp(requests * share), finished_reason="error")
    expected = [fleet.expect(
        "VllmErrorRatioHigh", level, fleet.engine_labels(engine),
        f"vLLM engine {engine.instance} ({engine.model_name}) fails {'many ' if level == 'critical' else ''}"
        "requests",
        f"{engine.ref()} failed or refused {percent(share)} of its requests over the last 5 minutes "
        f"({level} above {getattr(fleet.t, f'engine_error_ratio_{level}'):g}).")
        for level in (("critical", "warning") if severity == "critical" else ("warning",))]
    scenario.alert_tests.append(alert_test("10m", "VllmErrorRatioHigh", *expected))
    return scenario


def admission_refusals(fleet: Fleet) -> Scenario:
    """vLLM 0.33 refuses requests with 503 at its queue limit: they never finish, yet they are failures."""
    share = min(0.9, fleet.t.engine_error_ratio_critical * 2)
    scenario = Scenario(f"vLLM engine refuses {percent(share)} of its requests at admission (503)", TL)
    engine = Engine("gpu-node-1", fleet.default_model())
    scenario.series += fleet.vllm_engine(TL, engine)
    requests = 10 * TL.interval
    scenario.set("vllm:request_success_total", TL.ramp(requests * 0.95), finished_reason="stop")
    scenario.set("vllm:request_success_total", TL.ramp(0), finished_reason="error")
    scenario.set("vllm:admission_rejections_total", TL.ramp_change(0, requests * share / (1 - share), INJECT),
                 reason="max_num_queued_reqs")
    expected = [fleet.expect(
        "VllmErrorRatioHigh", level, fleet.engine_labels(engine),
        f"vLLM engine {engine.instance} ({engine.model_name}) fails {'many ' if level == 'critical' else ''}"
        "requests",
        f"{engine.ref()} failed or refused {percent(share)} of its requests over the last 5 minutes "
        f"({level} above {getattr(fleet.t, f'engine_error_ratio_{level}'):g}).") for level in ("critical", "warning")]
    scenario.alert_tests += [alert_test("1m50s", "VllmErrorRatioHigh"),
                             alert_test("10m", "VllmErrorRatioHigh", *expected)]
    return scenario
