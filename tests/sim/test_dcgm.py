"""The DCGM simulator serves what dcgm-exporter serves: checked against recorded real output and the catalog."""

from __future__ import annotations

import itertools
import time

import pytest

from llmobs import catalog as catalog_mod
from llmobs import images
from llmobs.errors import ConfigError
from llmobs.sim.dcgm import IDLE_LOAD, PINNED_RELEASE, RELEASES, ExporterOptions, read_counters
from llmobs.sim.faults import KINDS, Fault, parse
from llmobs.sim.topology import load_topology
from llmobs.workspace import Workspace

from .conftest import BUSY, COUNTERS, DATA, REPO, families, series

LAB_TOPOLOGY = Workspace(REPO).lab_topology

# The labels of every GPU series, in order; the hostname label's spelling depends on the release.
BASE_LABELS = ["gpu", "UUID", "pci_bus_id", "device", "modelName"]
RECORDED_RELEASE = "4.5.3-4.8.2"  # the L4 recording carries `Hostname`: a release before the rename
NVLINK = "DCGM_FI_DEV_NVLINK_{}_ERROR_COUNT_TOTAL"


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


def _field_ids() -> dict[str, int]:
    return {m.name: m.dcgm.field_id for m in catalog_mod.load().layer_metrics("gpu")}


def test_output_matches_recorded_dcgm_exporter(make_exporter) -> None:
    recorded_text = (DATA / "dcgm-exporter-4.x-l4.prom").read_text()
    exporter, gpus = make_exporter(_recorded_csv(), model="L40S", gpus=1, release=RECORDED_RELEASE)
    text, _ = _collect(exporter, gpus)
    recorded, simulated = families(recorded_text), families(text)
    assert set(simulated) == set(recorded)
    # Families come in field-ID order, as the exporter renders them (the recording's CSV lists
    # VGPU_LICENSE_STATUS, 526, before the row-remap fields, 393-395; the output has it after them).
    assert list(simulated) == list(recorded)
    assert list(recorded) == sorted(recorded, key=_field_ids().__getitem__)
    for name, family in recorded.items():
        assert simulated[name].type == family.type, name
        assert simulated[name].documentation == family.documentation, name
    recorded_series = {name: (labels, value) for name, labels, value in series(recorded_text)}
    expected_labels = [*BASE_LABELS, "Hostname", "DCGM_FI_DRIVER_VERSION"]
    for name, labels, value in series(text):
        if name not in recorded_series:
            continue
        real_labels, real_value = recorded_series[name]
        assert [key for key, _ in labels] == [key for key, _ in real_labels] == expected_labels, name
        # Integer fields render as %d, floating-point ones as Go's %f (six decimals).
        assert ("." in value) == ("." in real_value), f"{name}: {value} vs recorded {real_value}"
        if "." in value:
            assert len(value.split(".")[1]) == 6, f"{name}: {value}"


def test_families_follow_field_ids_whatever_the_csv_order(make_exporter) -> None:
    """The catalog's CSV lists fields in its own order; the output is in field-ID order, DCGM_EXP_* last."""
    text, _ = _collect(*make_exporter(model="H100-SXM", gpus=1), BUSY)
    served = list(families(text))
    ids = {**_field_ids(), **{name.removesuffix("_total"): i for name, i in _field_ids().items()}}
    assert served == sorted(served, key=ids.__getitem__)
    assert served[-2:] == ["DCGM_EXP_XID_ERRORS_COUNT", "DCGM_EXP_CLOCK_EVENTS_COUNT"]
    csv_order = [line.field for line in read_counters(COUNTERS) if line.prom_type != "label"]
    assert csv_order != sorted(csv_order, key=_field_ids().__getitem__), "the test needs a CSV out of field-ID order"


@pytest.mark.parametrize("release", list(RELEASES))
def test_hostname_label_is_spelled_as_the_release_spells_it(make_exporter, release) -> None:
    exporter, gpus = make_exporter(gpus=1, release=release)
    for _, labels, _ in series(_collect(exporter, gpus)[0]):
        keys = [key for key, _ in labels]
        assert keys[:6] == [*BASE_LABELS, RELEASES[release]], keys
        assert ({"Hostname", "hostname"} - {RELEASES[release]}).isdisjoint(keys), keys
        assert dict(labels)[RELEASES[release]] == "node-a"
    assert RELEASES["4.5.3-4.8.2"] == "Hostname" and RELEASES["4.6.0-4.8.3"] == "hostname"  # PR #655


def test_simulated_release_is_the_pinned_image_and_the_lab_serves_both_spellings() -> None:
    pin = images.pins(REPO / "compose")["DCGM_EXPORTER_IMAGE"]
    assert pin.split(":")[1].startswith(f"{PINNED_RELEASE}-"), pin
    lab = load_topology(LAB_TOPOLOGY)
    spellings = {RELEASES[host.sim.dcgm_exporter] for host in lab.simulated() if host.sim.gpus}
    assert spellings == {"Hostname", "hostname"}


def test_unknown_release_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"4\.7\.0-4\.9\.0") as error:
        ExporterOptions(release="4.7.0-4.9.0")
    assert error.value.field == "release" and PINNED_RELEASE in error.value.fix
    bad = tmp_path / "topology.yml"
    bad.write_text(LAB_TOPOLOGY.read_text().replace("dcgm_exporter: 4.5.3-4.8.2", "dcgm_exporter: 4.5.2"))
    with pytest.raises(ConfigError) as error:
        load_topology(bad)
    assert any(e.field.endswith(".sim.dcgm_exporter") and "4.5.3-4.8.2" in str(e) for e in error.value.errors)


def test_xid_series_match_recorded_labels(make_exporter) -> None:
    recorded = series((DATA / "dcgm-exporter-4.x-a100-xid.prom").read_text())
    exporter, gpus = make_exporter(model="A100-SXM", gpus=1, release=RECORDED_RELEASE)
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
        expected = set(catalog.labels_of(metric))
        for keys in by_name[metric.name]:
            assert keys[:5] == BASE_LABELS, (metric.name, keys)
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


@pytest.mark.parametrize(("code", "message"), [
    # dcgm-exporter internal/pkg/collector/xid_errors.go @d5e5f510; past the table: gpu_collector.go unknownErr.
    (8, "GPU stopped processing"), (45, "Preemptive cleanup, due to previous errors -- Most likely to see when"
                                        " running multiple cuda"),
    (154, "GPU Recovery Action Changed"), (160, "Channel Retirement Event"),
    (162, "Power Smoothing HW Circuitry Reengaged"), (172, "Uncorrectable SRAM Error"), (173, "Unknown Error"),
])
def test_xid_err_msg_is_the_exporters(make_exporter, code, message) -> None:
    exporter, gpus = make_exporter(model="H100-SXM", gpus=1)
    gpus[0].record_xid(time.time(), code)
    text, _ = _collect(exporter, gpus)
    (labels,) = [dict(labels) for name, labels, _ in series(text) if name == "DCGM_FI_DEV_XID_ERRORS"]
    assert (labels["err_code"], labels["err_msg"]) == (str(code), message)


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
    # CRC errors (flit and data), each replayed, and some link recoveries.
    ("nvlink-errors", lambda v, m: v[NVLINK.format("CRC_FLIT")] > 1000 and v[NVLINK.format("CRC_DATA")] > 250
     and v[NVLINK.format("REPLAY")] == v[NVLINK.format("CRC_FLIT")] + v[NVLINK.format("CRC_DATA")]
     and v[NVLINK.format("RECOVERY")] > 0),
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


def test_degrading_link_counters_rise_faster_and_healthy_links_stay_at_zero(make_exporter) -> None:
    exporter, gpus = make_exporter(model="H100-SXM", gpus=2)
    now = time.time()
    kind = KINDS["nvlink-errors"]
    growing = Fault(kind, gpu=1, params={"rate": 2.0, "growth": 30.0}, since=now)  # x4 a minute
    counts = [0.0]
    for minute in range(4):
        _collect(exporter, gpus, BUSY, {1: {"nvlink-errors": growing}}, steps=12, start=now + 60 * minute)
        counts.append(gpus[1].values[NVLINK.format("CRC_FLIT")])
    per_minute = [later - earlier for earlier, later in itertools.pairwise(counts)]
    assert all(later > 2 * earlier > 0 for earlier, later in itertools.pairwise(per_minute)), per_minute
    healthy = gpus[0].values
    assert all(healthy[NVLINK.format(name)] == 0 for name in ("CRC_FLIT", "CRC_DATA", "REPLAY", "RECOVERY"))
    assert healthy["DCGM_FI_DEV_PCIE_REPLAY_COUNTER"] == 0
    # A link fault is refused on a GPU without the link, and its parameters are checked: no negative
    # rates (a counter never goes down).
    _exporter, (pcie_card,) = make_exporter(model="L40S", gpus=1)
    with pytest.raises(ConfigError, match="the NVIDIA L40S has no NVLink"):
        pcie_card.check_fault(growing)
    gpus[1].check_fault(growing)
    with pytest.raises(ConfigError, match="below 0") as error:
        parse({"fault": "nvlink-errors", "gpu": 1, "rate": -5}, gpu_count=2, engines={})
    assert error.value.field == "rate"


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
    assert {"Hostname", "hostname"}.isdisjoint(keys) and "uuid" in keys and "UUID" not in keys


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
