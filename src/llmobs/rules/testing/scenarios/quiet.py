"""Healthy-busy and idle fleets raise nothing but the Watchdog."""

from __future__ import annotations

from llmobs.conventions import PORTS
from llmobs.rules.testing.fleet import Engine, Fleet
from llmobs.rules.testing.promtool import Scenario, Timeline, alert_test


def scenarios(fleet: Fleet) -> list[Scenario]:
    return [healthy_fleet(fleet)]


def healthy_fleet(fleet: Fleet) -> Scenario:
    """Healthy-busy and idle fleets over 2 hours: nothing fires but the Watchdog."""
    tl = Timeline(60, 121)
    scenario = Scenario("healthy busy and idle hosts raise no alert", tl)
    model = fleet.default_model()
    for host, gpus, gpu_model, busy in (("busy-h100", 8, "H100-SXM", True), ("busy-l40s", 4, "L40S", True),
                                        ("idle-a100", 4, "A100-SXM", False)):
        scenario.series += fleet.busy_host(tl, host, gpus, gpu_model, model, busy=busy)[0]
    # A T4 at 85 °C is healthy (its slowdown threshold is 93 °C): no fixed degree value.
    t4 = fleet.gpu("busy-t4", 0, "T4")
    scenario.series += fleet.node_host(tl, "busy-t4") + fleet.dcgm_host(tl, "busy-t4", [t4])
    scenario.set("DCGM_FI_DEV_GPU_TEMP", tl.flat(85), UUID=t4.uuid)
    scenario.set("DCGM_FI_DEV_GPU_TEMP_LIMIT", tl.flat(8), UUID=t4.uuid)
    # An engine on pre-0.11 vLLM (old metric names), and one per model with its own SLO targets.
    scenario.series += fleet.vllm_engine(tl, Engine("busy-t4", model), old_names=True)
    for index, name in enumerate(sorted(fleet.settings.slo.models)):
        scenario.series += fleet.vllm_engine(tl, Engine("busy-h100", name, PORTS["vllm"] + 1 + index))
    scenario.series += fleet.pipeline(tl)
    watchdog = fleet.expect("Watchdog", "info", {}, "Alerting pipeline heartbeat",
                        "This alert always fires. It goes to a dead man's switch, which raises an alarm when the "
                        "notifications stop.")
    for eval_time in ("5m", "30m", "1h", "2h"):
        for alert in fleet.all_alerts:
            scenario.alert_tests.append(alert_test(eval_time, alert, *([watchdog] if alert == "Watchdog" else [])))
    return scenario
