"""A GPU host's NVIDIA stack regresses after its set-up: the GPU preflight's textfile metrics
(llmobs.preflight.textfile, served by node_exporter) of an 8-GPU HGX host change at 2m (persistence mode
off, nv-fabricmanager gone, a pending row remap, an older driver than the two other hosts run)."""

from __future__ import annotations

from llmobs.conventions import PORTS
from llmobs.preflight import textfile
from llmobs.rules.testing.fleet import Fleet
from llmobs.rules.testing.promtool import Scenario, Series, Timeline, fires

TL = Timeline(10, 121)
INJECT = TL.at(120)
FLEET_DRIVER, OLD_DRIVER = "535.183.01", "535.129.03"
HOSTS = ("gpu-node-1", "gpu-node-2", "gpu-node-3")


def scenarios(fleet: Fleet) -> list[Scenario]:
    return [stack_regressed(fleet)]


def _preflight_series(fleet: Fleet, host: str) -> list[Series]:
    """What a healthy HGX host's preflight writes: 8 GPUs, 4 NVSwitches, the fabric manager running."""
    target = fleet.target("node", host, PORTS["node"], host)
    values = {textfile.GPUS: 8, textfile.NVSWITCHES: 4, textfile.FABRIC_MANAGER_RUNNING: 1,
              textfile.PERSISTENCE_MODE_OFF_GPUS: 0, textfile.ROW_REMAP_PENDING_GPUS: 0}
    series = [Series(name, target, TL.flat(value)) for name, value in values.items()]
    return [*series, Series(textfile.DRIVER_INFO, {**target, "driver_version": FLEET_DRIVER}, TL.flat(1))]


def stack_regressed(fleet: Fleet) -> Scenario:
    scenario = Scenario("a GPU host's NVIDIA stack regresses", TL)
    series, _, engine = fleet.busy_host(TL, HOSTS[0], 8, "H100-SXM", fleet.default_model())
    scenario.series += series
    for host in HOSTS:
        scenario.series += _preflight_series(fleet, host)
    host = engine.host
    scenario.set(textfile.PERSISTENCE_MODE_OFF_GPUS, TL.change(0, 8, INJECT), **{fleet.host: host})
    scenario.set(textfile.FABRIC_MANAGER_RUNNING, TL.change(1, 0, INJECT), **{fleet.host: host})
    scenario.set(textfile.ROW_REMAP_PENDING_GPUS, TL.change(0, 1, INJECT), **{fleet.host: host})
    old = scenario.find(textfile.DRIVER_INFO, **{fleet.host: host})
    old.stop(INJECT)
    scenario.series.append(Series(textfile.DRIVER_INFO, {**old.labels, "driver_version": OLD_DRIVER},
                                  TL.appears(1, INJECT)))
    labels = {fleet.host: host}
    scenario.alert_tests += [
        *fires("GpuPersistenceModeOff", "6m50s", "7m20s", fleet.expect(
            "GpuPersistenceModeOff", "warning", labels, f"Persistence mode is off on {host}",
            f"The last GPU preflight of {host} found persistence mode off on 8 GPU(s): enable nvidia-persistenced.")),
        *fires("GpuFabricManagerDown", "6m50s", "7m20s", fleet.expect(
            "GpuFabricManagerDown", "warning", labels, f"nv-fabricmanager is not running on NVSwitch host {host}",
            f"{host} has 4 NVSwitches but the last GPU preflight found no nv-fabricmanager: CUDA fails with"
            " error 802 until it runs.")),
        *fires("GpuDriverVersionDrift", "6m50s", "7m20s", fleet.expect(
            "GpuDriverVersionDrift", "warning", {**labels, "driver_version": OLD_DRIVER},
            f"{host} runs NVIDIA driver {OLD_DRIVER}, not the fleet's",
            f"The last GPU preflight of {host} found driver {OLD_DRIVER} on its 8 GPUs, which differs from the"
            " version most GPU hosts run (a partial upgrade or a host left behind).")),
        *fires("GpuPreflightRowRemapPending", "6m50s", "7m20s", fleet.expect(
            "GpuPreflightRowRemapPending", "warning", labels, f"A GPU of {host} waits for a reset to remap rows",
            f"The last GPU preflight of {host} found 1 GPU(s) with a row remap pending: drain the host and reset"
            " the GPU (or reboot).")),
    ]
    return scenario
