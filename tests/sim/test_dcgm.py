"""The DCGM simulator serves what dcgm-exporter serves: checked against recorded real output and the catalog."""

from __future__ import annotations

import time

import pytest

from llmobs import catalog as catalog_mod
from llmobs.errors import ConfigError
from llmobs.sim.dcgm import IDLE_LOAD, read_counters
from llmobs.sim.faults import KINDS, Fault

from .conftest import BUSY, COUNTERS, DATA, families, series

GPU_LABELS = ["gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION"]


def _collect(exporter, gpus, load=IDLE_LOAD, faults=None, steps=1, dt=5.0, start=None):
    now = start if start is not None else time.time()
    for _ in range(steps):
        now += dt
        for gpu in gpus:
            gpu.step(now, dt, load, (faults or {}).get(gpu.index, {}))
        exporter.collect(now)
    return exporter.render(), now


def _recorded_csv() -> str:
    """The counters CSV the recorded exporter ran with: its HELP/TYPE lines, plus the driver label."""
    lines, help_of = [], {}
    for line in (DATA / "dcgm-exporter-4.x-l4.prom").read_text().splitlines():
        if line.startswith("# HELP "):
            name, _, text = line[len("# HELP "):].partition(" ")
            help_of[name] = text
        elif line.startswith("# TYPE "):
            name, kind = line[len("# TYPE "):].split()
            lines.append(f"{name}, {kind}, {help_of[name]}")
    return "\n".join([*lines, "DCGM_FI_DRIVER_VERSION, label, Driver Version"]) + "\n"


def test_output_matches_recorded_dcgm_exporter(make_exporter) -> None:
    recorded_text = (DATA / "dcgm-exporter-4.x-l4.prom").read_text()
    exporter, gpus = make_exporter(_recorded_csv(), model="L40S", gpus=1)
    text, _ = _collect(exporter, gpus)
    recorded, simulated = families(recorded_text), families(text)
    assert set(simulated) == set(recorded)
    for name, family in recorded.items():
        assert simulated[name].type == family.type, name
        assert simulated[name].documentation == family.documentation, name
    recorded_series = {name: (labels, value) for name, labels, value in series(recorded_text)}
    for name, labels, value in series(text):
        if name not in recorded_series:
            continue
        real_labels, real_value = recorded_series[name]
        assert [key for key, _ in labels] == [key for key, _ in real_labels] == GPU_LABELS, name
        # Integer fields render as %d, floating-point ones as Go's %f (six decimals).
        assert ("." in value) == ("." in real_value), f"{name}: {value} vs recorded {real_value}"
        if "." in value:
            assert len(value.split(".")[1]) == 6, f"{name}: {value}"


def test_xid_series_match_recorded_labels(make_exporter) -> None:
    recorded = series((DATA / "dcgm-exporter-4.x-a100-xid.prom").read_text())
    exporter, gpus = make_exporter(model="A100-SXM", gpus=1)
    text, _ = _collect(exporter, gpus)
    simulated = {name: (labels, value) for name, labels, value in series(text)}
    for name, labels, value in recorded:
        sim_labels, sim_value = simulated[name]
        assert [key for key, _ in sim_labels] == [key for key, _ in labels], name
        assert sim_value == value == "0"
    assert dict(simulated["DCGM_FI_DEV_XID_ERRORS"][0])["err_msg"] == "No Error"


def test_every_catalog_gpu_metric_is_served_with_its_labels(make_exporter) -> None:
    catalog = catalog_mod.load()
    served, by_name = {}, {}
    # An H100 has every field but page retirement, which only GPUs before Ampere (T4) report.
    for model in ("H100-SXM", "T4"):
        text, _ = _collect(*make_exporter(model=model, gpus=2), BUSY)
        served.update(families(text))
        for name, labels, _ in series(text):
            by_name.setdefault(name, []).append([key for key, _ in labels])
    for metric in catalog.layer_metrics("gpu"):
        family = served.get(metric.name) or served.get(metric.name.removesuffix("_total"))
        assert family is not None, f"{metric.name} is not served"
        assert family.type == metric.type, metric.name
        assert family.documentation == metric.help, metric.name
        expected = set(catalog.labels_of(metric)) | {"Hostname"}
        for keys in by_name[metric.name]:
            assert keys[:5] == GPU_LABELS[:5], (metric.name, keys)
            assert set(keys) <= expected, (metric.name, set(keys) - expected)
        if not metric.name.startswith("DCGM_EXP_"):  # their xid/clock_event label comes with a count
            assert set(by_name[metric.name][0]) == expected, metric.name
        assert len(by_name[metric.name]) >= 2, metric.name  # one per GPU at least


def test_fields_a_gpu_lacks_are_absent(make_exporter) -> None:
    names = {
        model: {name for name, _, _ in series(_collect(*make_exporter(model=model, gpus=1))[0])}
        for model in ("T4", "RTX-4090", "L40S", "H100-SXM")
    }
    assert "DCGM_FI_DEV_ROW_REMAP_FAILURE" not in names["T4"]        # Turing retires pages instead
    assert "DCGM_FI_DEV_RETIRED_PENDING" in names["T4"]
    assert "DCGM_FI_DEV_RETIRED_PENDING" not in names["H100-SXM"]
    assert "DCGM_FI_PROF_SM_ACTIVE" not in names["RTX-4090"]         # no profiling on GeForce
    assert "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL" not in names["RTX-4090"]
    assert "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL" not in names["L40S"]  # PCIe card, no NVLink
    assert "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL" in names["H100-SXM"]


def test_committed_counters_csv_is_valid_for_the_exporter(make_exporter) -> None:
    if not COUNTERS.exists():
        pytest.skip("compose/dcgm-exporter/counters.csv is not generated yet (`llmobs generate`)")
    lines = read_counters(COUNTERS)
    catalog_names = {m.name for m in catalog_mod.load().layer_metrics("gpu")}
    assert {line.field for line in lines if line.prom_type != "label"} <= catalog_names
    exporter, gpus = make_exporter(COUNTERS.read_text(), model="H100-SXM", gpus=1)
    assert families(_collect(exporter, gpus)[0])


def test_busy_gpu_is_healthy_busy_and_idle_gpu_idle(make_exporter) -> None:
    _exporter, gpus = make_exporter(model="H100-SXM", gpus=2)
    model = gpus[0].model
    loads = {0: BUSY, 1: IDLE_LOAD}
    now = time.time()
    energy_before = [gpu.energy_mj for gpu in gpus]
    for _ in range(60):  # five minutes
        now += 5
        for gpu in gpus:
            gpu.step(now, 5, loads[gpu.index], {})
    busy, idle = gpus[0].values, gpus[1].values
    assert busy["DCGM_FI_DEV_GPU_UTIL"] >= 95 and idle["DCGM_FI_DEV_GPU_UTIL"] == 0
    total = busy["DCGM_FI_DEV_FB_USED"] + busy["DCGM_FI_DEV_FB_FREE"] + busy["DCGM_FI_DEV_FB_RESERVED"]
    assert 0.88 < busy["DCGM_FI_DEV_FB_USED"] / total < 0.91      # vLLM's preallocation
    assert idle["DCGM_FI_DEV_FB_USED"] <= 1
    assert 0.75 * model.power_limit_watts < busy["DCGM_FI_DEV_POWER_USAGE"] <= 1.02 * model.power_limit_watts
    assert idle["DCGM_FI_DEV_POWER_USAGE"] < 1.5 * model.idle_power_watts
    # Hot but with margin before the GPU's own slowdown threshold; idle close to its idle temperature.
    assert 5 < busy["DCGM_FI_DEV_GPU_TEMP_LIMIT"] < 35
    assert busy["DCGM_FI_DEV_GPU_TEMP"] > idle["DCGM_FI_DEV_GPU_TEMP"] + 10
    # The energy counter integrates the power: rate / 1000 is the mean power.
    mean_power = (gpus[0].energy_mj - energy_before[0]) / 1000 / 300
    assert 0.5 * model.power_limit_watts < mean_power < model.power_limit_watts


def test_xid_counts_in_the_window_and_a_reset_clears_it(make_exporter) -> None:
    exporter, gpus = make_exporter(model="H100-SXM", gpus=2, xid_window_ms=60000)
    now = time.time()
    gpus[1].record_xid(now, 79)
    gpus[1].record_xid(now + 1, 79)
    text, now = _collect(exporter, gpus, start=now + 1)
    counts = {(dict(labels)["gpu"], dict(labels).get("xid")): value
              for name, labels, value in series(text) if name == "DCGM_EXP_XID_ERRORS_COUNT"}
    assert counts == {("0", None): "0", ("1", "79"): "2"}
    xid = [dict(labels) for name, labels, _ in series(text) if name == "DCGM_FI_DEV_XID_ERRORS"]
    assert {(x["gpu"], x["err_code"], x["err_msg"]) for x in xid} == {
        ("0", "0", "No Error"), ("1", "79", "GPU has fallen off the bus")}
    # The window forgets it after -x milliseconds ...
    text, _ = _collect(exporter, gpus, start=now + 60)
    assert ("1", "79") not in {(dict(labels)["gpu"], dict(labels).get("xid"))
                               for name, labels, _ in series(text) if name == "DCGM_EXP_XID_ERRORS_COUNT"}
    # ... and a GPU reset clears the last XID.
    gpus[1].reset()
    text, _ = _collect(exporter, gpus)
    assert {v for n, labels, v in series(text) if n == "DCGM_FI_DEV_XID_ERRORS"} == {"0"}


@pytest.mark.parametrize(("fault", "check"), [
    ("overheat", lambda v, m: v["DCGM_FI_DEV_GPU_TEMP_LIMIT"] <= 2),
    ("thermal-throttle", lambda v, m: v["DCGM_FI_DEV_THERMAL_VIOLATION"] >= 290e9
     and v["DCGM_FI_DEV_SM_CLOCK"] < 0.7 * m.sm_clock_max_mhz),
    ("power-brake", lambda v, m: v["DCGM_FI_DEV_POWER_VIOLATION"] >= 290e9
     and v["DCGM_FI_DEV_POWER_USAGE"] < 0.5 * m.power_limit_watts),
    ("power-over-limit", lambda v, m: v["DCGM_FI_DEV_POWER_USAGE"] > 1.1 * v["DCGM_FI_DEV_ENFORCED_POWER_LIMIT"]),
    ("row-remap-failure", lambda v, m: v["DCGM_FI_DEV_ROW_REMAP_FAILURE"] == 1),
    ("row-remap-pending", lambda v, m: v["DCGM_FI_DEV_ROW_REMAP_PENDING"] == 1),
    ("nvlink-errors", lambda v, m: v["DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL"] > 1000),
    ("pcie-replay", lambda v, m: v["DCGM_FI_DEV_PCIE_REPLAY_COUNTER"] > 1000),
])
def test_gpu_fault_moves_its_field(make_exporter, fault, check) -> None:
    exporter, gpus = make_exporter(model="H100-SXM", gpus=2)
    kind = KINDS[fault]
    injected = Fault(kind, gpu=1, params={p.name: p.default for p in kind.params})
    _collect(exporter, gpus, BUSY, {1: {fault: injected}}, steps=60)
    assert check(gpus[1].values, gpus[1].model), (fault, gpus[1].values)
    healthy = gpus[0].values
    assert healthy["DCGM_FI_DEV_GPU_TEMP_LIMIT"] > 5 and healthy["DCGM_FI_DEV_THERMAL_VIOLATION"] == 0
    assert healthy["DCGM_FI_DEV_ROW_REMAP_FAILURE"] == 0


def test_clock_events_name_the_throttle_reason(make_exporter) -> None:
    exporter, gpus = make_exporter(model="H100-SXM", gpus=2)
    brake = Fault(KINDS["power-brake"], gpu=0)
    text, _ = _collect(exporter, gpus, BUSY, {0: {"power-brake": brake}}, steps=6)
    events = {(dict(labels)["gpu"], dict(labels)["clock_event"]) for name, labels, _ in series(text)
              if name == "DCGM_EXP_CLOCK_EVENTS_COUNT"}
    assert {("0", "hw_power_brake"), ("0", "hw_slowdown")} <= events
    assert not {event for gpu, event in events if gpu == "1"} & {"hw_power_brake", "hw_slowdown", "hw_thermal"}


def test_gpu_off_the_bus_loses_every_series(make_exporter) -> None:
    exporter, gpus = make_exporter(model="H100-SXM", gpus=2)
    text, _ = _collect(exporter, gpus, faults={1: {"fall-off-bus": Fault(KINDS["fall-off-bus"], gpu=1)}})
    gpus_seen = {dict(labels)["gpu"] for _, labels, _ in series(text)}
    assert gpus_seen == {"0"}
    text, _ = _collect(exporter, gpus)
    assert {dict(labels)["gpu"] for _, labels, _ in series(text)} == {"0", "1"}


def test_dbe_counts_and_raises_xid_48_until_reset(make_exporter) -> None:
    exporter, gpus = make_exporter(model="A100-SXM", gpus=1)
    gpus[0].add_dbe(time.time(), 2)
    text, _ = _collect(exporter, gpus)
    values = {name: value for name, _, value in series(text)}
    assert values["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"] == "2" and values["DCGM_FI_DEV_XID_ERRORS"] == "48"
    gpus[0].reset()
    text, _ = _collect(exporter, gpus)
    values = {name: value for name, _, value in series(text)}
    assert values["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"] == "0" and values["DCGM_FI_DEV_ECC_DBE_AGG_TOTAL"] == "2"


def test_exporter_flags_change_labels(make_exporter) -> None:
    exporter, gpus = make_exporter(gpus=1, hostname=None, uuid_label="uuid")
    keys = [key for key, _ in series(_collect(exporter, gpus)[0])[0][1]]
    assert "Hostname" not in keys and "uuid" in keys and "UUID" not in keys


@pytest.mark.parametrize(("line", "field"), [
    ("DCGM_FI_DEV_GPU_TEMP, gauge, GPU temperature, in C", "counters.csv:2"),
    ("DCGM_FI_DEV_GPU_TEMP, summary, GPU temperature", "counters.csv:2"),
])
def test_malformed_counters_csv_is_refused(tmp_path, line, field) -> None:
    path = tmp_path / "counters.csv"
    path.write_text(f"# comment\n{line}\n")
    with pytest.raises(ConfigError) as error:
        read_counters(path)
    assert error.value.field.endswith(field)
    with pytest.raises(ConfigError, match="--collectors"):
        read_counters(tmp_path / "missing.csv")
