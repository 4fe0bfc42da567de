"""GPU faults, from dcgm-exporter's series: XIDs by class, memory errors, heat, throttling, power, NVLink
and PCIe link errors, a GPU off the bus, and the exporter down or restarting. Each fault starts at 2m on a
healthy, busy host."""

from __future__ import annotations

from llmobs.conventions import PORTS, instance
from llmobs.rules.testing.fleet import Fleet, Gpu
from llmobs.rules.testing.promtool import Scenario, Series, Timeline, alert_test, fires, percent

TL = Timeline(10, 121)
INJECT = TL.at(120)  # faults start at 2m
# (code, alert, severity, class) of XIDs of every class the catalog knows: 160 (channel retirement) and 151
# (key rotation) are fatal, 32 (PBDMA) only an application's, 57 and 167 (PCIe fatal timeout, no action
# listed by NVIDIA yet) need a person, 43 (NVIDIA: ignore) is a record that pages nobody.
XID_CASES = ((79, "GpuXidFatal", "critical", "fatal"), (160, "GpuXidFatal", "critical", "fatal"),
             (151, "GpuXidFatal", "critical", "fatal"), (13, "GpuXidApplication", "warning", "application"),
             (32, "GpuXidApplication", "warning", "application"),
             (154, "GpuXidRecoveryActionChanged", "warning", "recovery_action"),
             (54, "GpuXidNeedsInvestigation", "warning", "investigate"),
             (57, "GpuXidNeedsInvestigation", "warning", "investigate"),
             (167, "GpuXidNeedsInvestigation", "warning", "investigate"),
             (63, "GpuXidInformational", "info", "informational"),
             (43, "GpuXidInformational", "info", "informational"))
XID_ALERTS = (*sorted({case[1] for case in XID_CASES}), "GpuXidUnclassified")
# How each class's description ends, after the count (`action`: the catalog's action for the code).
XID_TAILS = {
    "fatal": ". NVIDIA classes it fatal: {action}.",
    "recovery_action": ": the driver changed the recovery action the GPU needs, which may now be a reset or a"
                       " reboot. Recovery action: {action}.",
    "application": ". The process using the GPU failed; the GPU is healthy: {action}.",
    "investigate": ". NVIDIA asks for a person, not an automatic reset: {action}.",
    "informational": ": a record, {action}.",
}
XID_SUMMARIES = {"recovery_action": "Recovery action changed on GPU {gpu} of {host} (XID {code})",
                 "investigate": "XID {code} to investigate on GPU {gpu} of {host}"}


def scenarios(fleet: Fleet) -> list[Scenario]:
    return [*(xid_classified(fleet, *case) for case in XID_CASES),
            *(scenario(fleet) for scenario in (xid_unclassified, ecc_double_bit, row_remapping, thermal_margin_low,
                                               slowdown_without_margin_field, thermal_throttling, power_brake,
                                               power_above_limit, nvlink_crc_errors, nvlink_replay_recovery,
                                               pcie_replays, off_the_bus, exporter_down, exporter_restart))]


def _fault(fleet: Fleet, name: str) -> tuple[Scenario, list[Gpu]]:
    """A busy 2-GPU H100 host's dcgm-exporter, before the fault."""
    scenario = Scenario(name, TL)
    series, gpus, _ = fleet.busy_host(TL, "gpu-node-1", 2, "H100-SXM", fleet.default_model(), parts=("dcgm",))
    scenario.series += series
    return scenario, gpus


def _xid_reported(scenario: Scenario, gpu: Gpu, code: int, count: float) -> None:
    """The exporter's XID window counts `count` of XID `code` from the fault on (the zero series goes)."""
    empty = scenario.find("DCGM_EXP_XID_ERRORS_COUNT", UUID=gpu.uuid)
    empty.stop(INJECT)
    scenario.series.append(Series(empty.name, {**empty.labels, "xid": str(code)}, TL.appears(count, INJECT)))


def xid_classified(fleet: Fleet, code: int, alert: str, severity: str, label: str) -> Scenario:
    scenario, gpus = _fault(fleet, f"XID {code} ({label}) on GPU 1")
    gpu, xid = gpus[1], fleet.catalog.xids.codes[code]
    _xid_reported(scenario, gpu, code, 1)
    action = fleet.catalog.xids.actions[xid.action]
    summary = XID_SUMMARIES.get(label, f"{label.capitalize()} XID {{code}} on GPU {{gpu}} of {{host}}")
    expected = fleet.expect(
        alert, severity,
        {**fleet.gpu_labels(gpu), "xid": str(code), "xid_name": xid.name, "xid_action": action},
        summary.format(code=code, gpu=gpu.index, host=gpu.host),
        f"{gpu.ref()} reported XID {code} ({xid.name}) 1 time(s) in the exporter's XID window"
        + XID_TAILS[label].format(action=action),
    )
    scenario.alert_tests += fires(alert, "1m50s", "2m10s", expected)
    # One class, one alert: the code raises no other XID alert (an informational one pages nobody).
    scenario.alert_tests += [alert_test("2m10s", other) for other in XID_ALERTS if other != alert]
    return scenario


def xid_unclassified(fleet: Fleet) -> Scenario:
    scenario, gpus = _fault(fleet, "XID 173 (past NVIDIA's catalogue) on GPU 0")
    gpu = gpus[0]
    _xid_reported(scenario, gpu, 173, 2)
    scenario.alert_tests.append(alert_test("2m10s", "GpuXidUnclassified", fleet.expect(
        "GpuXidUnclassified", "warning", {**fleet.gpu_labels(gpu), "xid": "173"},
        f"Unclassified XID 173 on GPU 0 of {gpu.host}",
        f"{gpu.ref()} reported XID 173 2 time(s) in the exporter's XID window. The kit does not know this code: "
        "look it up in NVIDIA's XID catalogue.")))
    scenario.alert_tests += [alert_test("2m10s", other) for other in XID_ALERTS if other != "GpuXidUnclassified"]
    return scenario


def ecc_double_bit(fleet: Fleet) -> Scenario:
    scenario, gpus = _fault(fleet, "double-bit ECC error on GPU 1")
    gpu = gpus[1]
    scenario.set("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", TL.change(0, 2, INJECT), UUID=gpu.uuid)
    scenario.alert_tests += fires("GpuEccDoubleBitError", "1m50s", "2m10s", fleet.expect(
        "GpuEccDoubleBitError", "critical", fleet.gpu_labels(gpu), f"Uncorrectable ECC errors on GPU 1 of {gpu.host}",
        f"{gpu.ref()} has 2 uncorrectable (double-bit) ECC error(s) since the driver loaded. Data in GPU memory "
        "may be corrupt: drain the GPU's engines and reset the GPU."))
    return scenario


def row_remapping(fleet: Fleet) -> Scenario:
    scenario, (g0, g1) = _fault(fleet, "row remap failure on GPU 0, row remap and page retirement pending on GPU 1")
    scenario.set("DCGM_FI_DEV_ROW_REMAP_FAILURE", TL.change(0, 1, INJECT), UUID=g0.uuid)
    scenario.set("DCGM_FI_DEV_ROW_REMAP_PENDING", TL.change(0, 1, INJECT), UUID=g1.uuid)
    scenario.set("DCGM_FI_DEV_RETIRED_PENDING", TL.change(0, 3, INJECT), UUID=g1.uuid)
    scenario.alert_tests += [
        alert_test("2m10s", "GpuRowRemapFailure", fleet.expect(
            "GpuRowRemapFailure", "critical", fleet.gpu_labels(g0), f"Row remapping failed on GPU 0 of {g0.host}",
            f"{g0.ref()} could not remap a faulty memory row: no spare row is left. Take the GPU out of service, "
            "run field diagnostics and replace it.")),
        alert_test("2m50s", "GpuRowRemapPending"),  # pending needs 1m
        alert_test("3m20s", "GpuRowRemapPending", fleet.expect(
            "GpuRowRemapPending", "warning", fleet.gpu_labels(g1), f"Row remap pending on GPU 1 of {g1.host}",
            f"{g1.ref()} has a memory row remap waiting for a GPU reset. Drain the GPU's engines and reset it at "
            "the next opportunity.")),
        alert_test("3m20s", "GpuRetiredPagesPending", fleet.expect(
            "GpuRetiredPagesPending", "warning", fleet.gpu_labels(g1), f"Page retirement pending on GPU 1 of {g1.host}",
            f"{g1.ref()} has 3 memory page(s) waiting for retirement at the next driver reload (GPUs before "
            "Ampere). Drain the GPU's engines and reset it.")),
    ]
    return scenario


def _heats_up(fleet: Fleet, scenario: Scenario, gpu: Gpu, margin: float) -> None:
    """From the fault on, the GPU runs `margin` degrees below its own slowdown temperature."""
    slowdown = fleet.catalog.gpu_models[gpu.model].slowdown_temp_celsius
    scenario.set("DCGM_FI_DEV_GPU_TEMP", TL.change(slowdown - 15, slowdown - margin, INJECT), UUID=gpu.uuid)


def _margin_alert(fleet: Fleet, gpu: Gpu, severity: str, margin: float) -> dict:
    warn, crit = fleet.t.gpu_temp_margin_warning_celsius, fleet.t.gpu_temp_margin_critical_celsius
    if severity == "critical":
        return fleet.expect(
            "GpuThermalMarginLow", "critical", fleet.gpu_labels(gpu),
            f"GPU {gpu.index} of {gpu.host} is at its slowdown temperature",
            f"{gpu.ref()} is {margin:.1f} °C from its own slowdown threshold (critical below {crit:g} °C of margin). "
            "Drain it before it throttles or shuts down.")
    return fleet.expect(
        "GpuThermalMarginLow", "warning", fleet.gpu_labels(gpu), f"GPU {gpu.index} of {gpu.host} is near its slowdown "
        "temperature",
        f"{gpu.ref()} is {margin:.1f} °C from its own slowdown threshold (warning below {warn:g} °C of margin).")


def thermal_margin_low(fleet: Fleet) -> Scenario:
    scenario, gpus = _fault(fleet, "thermal margin below the warning threshold on GPU 0")
    gpu, warn = gpus[0], fleet.t.gpu_temp_margin_warning_celsius
    scenario.set("DCGM_FI_DEV_GPU_TEMP_LIMIT", TL.change(15, warn - 1, INJECT), UUID=gpu.uuid)
    _heats_up(fleet, scenario, gpu, warn - 1)
    expected = _margin_alert(fleet, gpu, "warning", warn - 1)
    scenario.alert_tests += fires("GpuThermalMarginLow", "3m50s", "4m20s", expected)
    return scenario


def slowdown_without_margin_field(fleet: Fleet) -> Scenario:
    """Without the thermal-margin field the margin is the GPU's own slowdown temperature minus its temperature."""
    scenario, gpus = _fault(fleet, "GPU 1 at its slowdown temperature, no thermal-margin field")
    gpu, margin = gpus[1], fleet.t.gpu_temp_margin_critical_celsius - 1
    scenario.drop("DCGM_FI_DEV_GPU_TEMP_LIMIT", UUID=gpu.uuid)
    _heats_up(fleet, scenario, gpu, margin)
    critical = _margin_alert(fleet, gpu, "critical", margin)
    scenario.alert_tests += [alert_test("2m20s", "GpuThermalMarginLow"),
                             alert_test("2m40s", "GpuThermalMarginLow", critical),
                             alert_test("4m20s", "GpuThermalMarginLow", critical,
                                        _margin_alert(fleet, gpu, "warning", margin))]
    return scenario


def thermal_throttling(fleet: Fleet) -> Scenario:
    scenario, gpus = _fault(fleet, "GPU 0 thermally throttled half of the time")
    gpu = gpus[0]
    scenario.set("DCGM_FI_DEV_THERMAL_VIOLATION", TL.ramp_change(0, 0.5e9 * TL.interval, INJECT), UUID=gpu.uuid)
    scenario.alert_tests += fires("GpuThermalThrottling", "9m", "10m", fleet.expect(
        "GpuThermalThrottling", "warning", fleet.gpu_labels(gpu), f"GPU 0 of {gpu.host} is thermally throttled",
        f"{gpu.ref()} was thermally throttled 50% of the last 5 minutes (warning above "
        f"{fleet.t.gpu_throttle_ratio_warning:g})."))
    return scenario


def power_brake(fleet: Fleet) -> Scenario:
    scenario, gpus = _fault(fleet, "power brake on GPU 1")
    gpu = gpus[1]
    brake = scenario.find("DCGM_EXP_CLOCK_EVENTS_COUNT", UUID=gpu.uuid)
    scenario.series.append(Series(brake.name, {**brake.labels, "clock_event": "hw_power_brake"},
                                  TL.appears(12, INJECT)))
    scenario.alert_tests += fires("GpuHardwareSlowdown", "2m50s", "3m20s", fleet.expect(
        "GpuHardwareSlowdown", "warning", {**fleet.gpu_labels(gpu), "clock_event": "hw_power_brake"},
        f"Hardware slowdown (hw_power_brake) on GPU 1 of {gpu.host}",
        f"{gpu.ref()} reported the clocks event hw_power_brake 12 time(s) in the exporter's window: its clocks "
        "are cut by half or more."))
    return scenario


def power_above_limit(fleet: Fleet) -> Scenario:
    ratio = round(fleet.t.gpu_power_over_limit_ratio + 0.05, 4)
    scenario, gpus = _fault(fleet, "GPU 0 draws more than its enforced power limit")
    gpu = gpus[0]
    limit = fleet.catalog.gpu_models[gpu.model].power_limit_watts
    scenario.set("DCGM_FI_DEV_POWER_USAGE", TL.change(limit * 0.97, limit * ratio, INJECT), UUID=gpu.uuid)
    scenario.alert_tests += fires("GpuPowerAboveLimit", "6m50s", "7m20s", fleet.expect(
        "GpuPowerAboveLimit", "warning", fleet.gpu_labels(gpu), f"GPU 0 of {gpu.host} draws more than its power limit",
        f"{gpu.ref()} draws {percent(ratio)} of the power limit the driver enforces (warning above "
        f"{fleet.t.gpu_power_over_limit_ratio:g} times the limit, for 5 minutes)."))
    return scenario


def _links_count(scenario: Scenario, gpu: Gpu, name: str, per_second: float) -> None:
    """From the fault on, the GPU's counter `name` rises by `per_second`."""
    scenario.set(name, TL.ramp_change(0, per_second * TL.interval, INJECT), UUID=gpu.uuid)


def nvlink_crc_errors(fleet: Fleet) -> Scenario:
    """GPU 1's links count twice DCGM's CRC limit; GPU 0's half of it, which NVLink's replays absorb. The
    5-minute rate passes the limit about 2.5 minutes in, then `for` takes 10 minutes."""
    limit = fleet.t.nvlink_crc_errors_per_second_warning
    scenario, (g0, g1) = _fault(fleet, "NVLink CRC errors above the limit on GPU 1, below it on GPU 0")
    _links_count(scenario, g1, "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", limit * 1.5)
    _links_count(scenario, g1, "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL", limit * 0.5)
    _links_count(scenario, g0, "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", limit * 0.5)
    scenario.alert_tests += fires("GpuNvlinkCrcErrors", "14m", "15m", fleet.expect(
        "GpuNvlinkCrcErrors", "warning", fleet.gpu_labels(g1), f"NVLink CRC errors on GPU 1 of {g1.host}",
        f"{g1.ref()} counts {limit * 2:.0f} NVLink CRC error(s) per second over its links (warning above "
        f"{limit:g} for 10 minutes)."))
    return scenario


def nvlink_replay_recovery(fleet: Fleet) -> Scenario:
    """One link of GPU 0 drops and retrains once: a recovery, three replays."""
    scenario, gpus = _fault(fleet, "an NVLink link of GPU 0 recovers once and replays")
    gpu = gpus[0]
    scenario.set("DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL", TL.change(0, 1, INJECT), UUID=gpu.uuid)
    scenario.set("DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", TL.change(0, 3, INJECT), UUID=gpu.uuid)
    expected = fleet.expect(
        "GpuNvlinkReplayOrRecovery", "warning", fleet.gpu_labels(gpu),
        f"NVLink replays or recoveries on GPU 0 of {gpu.host}",
        f"{gpu.ref()} replayed or recovered its NVLink links 4 time(s) in the last 10 minutes: a link is degrading.")
    scenario.alert_tests += [*fires("GpuNvlinkReplayOrRecovery", "1m50s", "2m10s", expected),
                             alert_test("13m", "GpuNvlinkReplayOrRecovery")]  # 10 minutes without a new one
    return scenario


def pcie_replays(fleet: Fleet) -> Scenario:
    per_minute = fleet.t.pcie_replays_per_minute_warning * 2 + 1
    scenario, gpus = _fault(fleet, f"GPU 1 replays {per_minute:g} PCIe packets a minute")
    gpu = gpus[1]
    scenario.set("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", TL.ramp_change(TL.interval / 60, per_minute * TL.interval / 60,
                                                                   INJECT, 40), UUID=gpu.uuid)
    scenario.alert_tests += fires("GpuPcieReplays", "14m", "15m", fleet.expect(
        "GpuPcieReplays", "warning", fleet.gpu_labels(gpu), f"PCIe replays on GPU 1 of {gpu.host}",
        f"{gpu.ref()} retransmits {per_minute:.1f} PCIe packet(s) per minute (warning above "
        f"{fleet.t.pcie_replays_per_minute_warning:g} for 10 minutes): its PCIe link is degrading."))
    return scenario


def off_the_bus(fleet: Fleet) -> Scenario:
    scenario, gpus = _fault(fleet, "GPU 1 falls off the bus (its series disappear)")
    gpu = gpus[1]
    for s in scenario.where(lambda s: s.labels.get("UUID") == gpu.uuid):
        s.stop(INJECT)
    expected = fleet.expect(
        "GpuMissing", "critical", fleet.gpu_labels(gpu), f"GPU 1 of {gpu.host} is missing",
        f"{gpu.ref()} was reported within the last {fleet.t.gpu_missing_lookback} but is no longer, while the host's "
        "dcgm-exporter is up: it probably fell off the bus.")
    scenario.alert_tests += [*fires("GpuMissing", "1m50s", "2m10s", expected), alert_test("6m", "GpuMissing", expected)]
    return scenario


def exporter_down(fleet: Fleet) -> Scenario:
    scenario, gpus = _fault(fleet, "dcgm-exporter down (every GPU series goes with it)")
    host = gpus[0].host
    for s in scenario.where(lambda s: s.name.startswith("DCGM_")):
        s.stop(INJECT)
    scenario.set("up", TL.change(1, 0, INJECT), job=fleet.jobs.dcgm)
    target = instance(host, PORTS["dcgm"])
    scenario.alert_tests += [
        alert_test("2m50s", "DcgmExporterDown"),
        alert_test("3m20s", "DcgmExporterDown", fleet.expect(
            "DcgmExporterDown", "warning", {fleet.host: host, "instance": target, "job": fleet.jobs.dcgm},
            f"dcgm-exporter on {host} is down",
            f"Prometheus cannot scrape dcgm-exporter at {target} on {host}: GPU faults on this host go unseen.")),
        alert_test("5m", "GpuMissing"),  # the exporter is down, not the GPUs
    ]
    return scenario


def exporter_restart(fleet: Fleet) -> Scenario:
    """An exporter restart (one failed scrape, every series gone and back) is not a missing GPU."""
    scenario, _ = _fault(fleet, "dcgm-exporter restart raises nothing")
    for s in scenario.where(lambda s: s.name.startswith("DCGM_")):
        s.gap(INJECT)
    scenario.find("up", job=fleet.jobs.dcgm).samples[INJECT] = 0
    scenario.alert_tests += [alert_test(t, alert) for t in ("2m10s", "3m", "5m")
                             for alert in ("GpuMissing", "DcgmExporterDown", "HostDown")]
    return scenario
