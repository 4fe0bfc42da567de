"""A dcgm-exporter simulator: the exporter's exact /metrics text for the fields of a counters CSV.

What dcgm-exporter 4.x (releases 4.5.3-4.8.2 to 4.6.1-4.8.4) renders, and what this module reproduces:
- one `# HELP`/`# TYPE` pair per CSV line (name = the CSV's first column, type and help from the CSV),
  in DCGM field-ID order, not CSV order (the exporter's template ranges over a map keyed by the
  counter, field ID first); its own DCGM_EXP_* fields are IDs 9001 and up, so they come last;
- labels `gpu, UUID, pci_bus_id, device, modelName[, hostname]`, then label-type CSV fields such as
  DCGM_FI_DRIVER_VERSION and the collector's labels in sorted order, then `err_code, err_msg` on XID;
  the hostname label is spelled `Hostname` up to release 4.5.3-4.8.2 (RELEASES);
- `err_msg` from the exporter's own message table (the catalog's xids.yaml), "Unknown Error" past it;
- integer fields as `%d`, floating-point fields (watts, ratios) as Go's `%f`;
- fields the GPU does not support (profiling on GeForce, NVLink on PCIe cards, row remapping before
  Ampere) are absent, as DCGM returns blanks for them;
- DCGM_EXP_XID_ERRORS_COUNT counts each XID code seen in the last `-x` milliseconds and shows one
  zero-valued series without `xid` when there was none; DCGM_EXP_CLOCK_EVENTS_COUNT counts, per reason,
  the collections in its window that had that clock-event bit set.
Values follow the GPU's load (from the engines that run on it) and the faults in force.
"""

from __future__ import annotations

import csv
import logging
import math
import random
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from llmobs import catalog as catalog_mod
from llmobs import exposition
from llmobs.catalog import Catalog, GpuModel
from llmobs.errors import ConfigError
from llmobs.sim.faults import Fault

log = logging.getLogger(__name__)

DEFAULT_COLLECTORS = "/etc/dcgm-exporter/default-counters.csv"
# The releases the simulator imitates and how each spells the hostname label (renamed by PR #655, first
# released in 4.6.0-4.8.3). PINNED_RELEASE is the kit's pin (compose/services/dcgm-exporter.yaml).
RELEASES = {"4.6.1-4.8.4": "hostname", "4.6.0-4.8.3": "hostname", "4.5.3-4.8.2": "Hostname"}
PINNED_RELEASE = "4.6.1-4.8.4"
DEFAULT_DRIVER_VERSION = exposition.DRIVER_VERSION
XID_COUNT = "DCGM_EXP_XID_ERRORS_COUNT"
CLOCK_EVENTS_COUNT = "DCGM_EXP_CLOCK_EVENTS_COUNT"
PROM_TYPES = ("gauge", "counter", "label")
# Units whose DCGM fields are doubles (rendered with %f); every other field is an int64.
DOUBLE_UNITS = {"watts", "ratio"}

# Clock-event reasons (DCGM_CLOCKS_EVENT_REASON_* bits) and the names the exporter gives them.
CLOCK_EVENTS = {
    0x1: "gpu_idle", 0x2: "clocks_setting", 0x4: "power_cap", 0x8: "hw_slowdown", 0x10: "sync_boost",
    0x20: "sw_thermal", 0x40: "hw_thermal", 0x80: "hw_power_brake", 0x100: "display_clocks",
}
IDLE, POWER_CAP, HW_SLOWDOWN, SW_THERMAL, HW_THERMAL, POWER_BRAKE = 0x1, 0x4, 0x8, 0x20, 0x40, 0x80
NS_PER_S = 1_000_000_000
MAX_DOUBLINGS = 20  # a growing fault's rate stops at 2**20 times its start


@dataclass(frozen=True)
class CounterLine:
    """One line of a dcgm-exporter counters CSV: `FIELD, prometheus type, help`."""

    field: str
    prom_type: str
    help: str


def read_counters(path: Path) -> list[CounterLine]:
    """Parse a counters CSV the way dcgm-exporter does (`#` comments, exactly three fields)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError("--collectors", f"cannot read {path}: {error.strerror}",
                          "point -f/--collectors (DCGM_EXPORTER_COLLECTORS) at the counters CSV") from None
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        row = next(csv.reader([raw]))
        cells = [cell.strip() for cell in row]
        if len(cells) != 3:
            raise ConfigError(f"{path}:{number}", f"malformed CSV record {cells}, expected 3 fields",
                              "write `FIELD, gauge|counter|label, help text`")
        if cells[1] not in PROM_TYPES:
            raise ConfigError(f"{path}:{number}", f"unknown Prometheus metric type {cells[1]!r}",
                              f"use one of {', '.join(PROM_TYPES)}")
        lines.append(CounterLine(*cells))
    return lines


@dataclass(frozen=True)
class GpuLoad:
    """What the engines on a GPU do to it during a collection interval."""

    busy: float = 0.0          # share of time a kernel ran (DCGM_FI_DEV_GPU_UTIL / 100)
    intensity: float = 0.0     # how hard the kernels push (drives power, tensor and DRAM activity)
    fb_fraction: float = 0.0   # share of the framebuffer the engine holds (vLLM preallocates it)
    nvlink_bytes_per_s: float = 0.0


IDLE_LOAD = GpuLoad()


@dataclass
class GpuSim:
    """One simulated GPU: slow physical state (temperature, energy, error counters) plus faults."""

    host: str
    index: int
    model: GpuModel
    rng: random.Random
    uuid: str = ""
    temp: float = 0.0
    power: float = 0.0
    sm_clock: float = 0.0
    energy_mj: float = 0.0
    present: bool = True
    last_xid: int = 0
    xid_events: deque = field(default_factory=deque)      # (time, code)
    clock_samples: deque = field(default_factory=deque)   # (time, bitmask)
    counters: dict[str, float] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.uuid = exposition.gpu_uuid(self.host, self.index)
        self.temp = self.model.idle_temp_celsius
        self.power = self.model.idle_power_watts
        self.sm_clock = self._idle_clock()
        # The energy counter runs since the driver loaded: days of mostly idle operation.
        self.energy_mj = self.rng.uniform(2, 30) * 86400 * self.model.idle_power_watts * 1000
        self.counters = dict.fromkeys((
            "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
            "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "DCGM_FI_DEV_RETIRED_DBE", "DCGM_FI_DEV_RETIRED_PENDING",
            "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
            "DCGM_FI_DEV_POWER_VIOLATION", "DCGM_FI_DEV_THERMAL_VIOLATION", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
            "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
            "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL"), 0.0)
        # A few rows remapped for correctable errors over the board's life is normal.
        self.counters["DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS"] = float(self.rng.choice((0, 0, 0, 1, 2)))
        self.counters["DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"] = float(self.rng.choice((0, 0, 1, 3)))
        self.flags = {"DCGM_FI_DEV_ROW_REMAP_FAILURE": 0, "DCGM_FI_DEV_ROW_REMAP_PENDING": 0}

    def _idle_clock(self) -> float:
        return 210.0 if not self.model.hbm else 345.0

    # ------------------------------------------------------------------ dynamics
    def step(self, now: float, dt: float, load: GpuLoad, faults: dict[str, Fault]) -> None:
        """Advance the GPU by `dt` seconds under `load` and `faults`; refresh its field values."""
        m, rng = self.model, self.rng
        self.present = "fall-off-bus" not in faults
        busy = min(1.0, max(0.0, load.busy))
        noise = rng.gauss(0, 0.01)
        limit = m.power_limit_watts
        # Power under inference load sits below the limit; the limiter caps it at the limit.
        target_power = m.idle_power_watts + busy * (0.55 + 0.45 * math.sqrt(load.intensity)) * (
            limit - m.idle_power_watts)
        target_power *= 1 + noise
        power_capped_share = max(0.0, min(0.2, (target_power / limit - 0.85) * 2)) if busy else 0.0
        bits = IDLE if busy < 0.05 else 0
        clock_factor = 1.0
        if "power-brake" in faults:
            target_power, clock_factor, bits = target_power * 0.4, 0.45, bits | POWER_BRAKE | HW_SLOWDOWN
            self.counters["DCGM_FI_DEV_POWER_VIOLATION"] += dt * NS_PER_S
        if "thermal-throttle" in faults:
            clock_factor, bits = min(clock_factor, 0.6), bits | SW_THERMAL | HW_THERMAL
            self.counters["DCGM_FI_DEV_THERMAL_VIOLATION"] += dt * NS_PER_S
        if "power-over-limit" in faults:
            target_power = limit * faults["power-over-limit"].params["ratio"]
            power_capped_share = 0.0
        else:
            target_power = min(target_power, limit)
        if power_capped_share and rng.random() < power_capped_share * 2.5:
            bits |= POWER_CAP
            self.counters["DCGM_FI_DEV_POWER_VIOLATION"] += dt * NS_PER_S * power_capped_share
        self.power = target_power + rng.gauss(0, 0.005 * limit)
        self.energy_mj += max(self.power, 0.0) * dt * 1000

        # Temperature follows power with a thermal time constant; faults move its set point.
        span = m.max_operating_temp_celsius - 14 - m.idle_temp_celsius
        target_temp = m.idle_temp_celsius + span * (self.power - m.idle_power_watts) / (limit - m.idle_power_watts)
        tau = 30.0
        if "thermal-throttle" in faults:
            target_temp, tau = m.max_operating_temp_celsius + 1, 10.0
        if "overheat" in faults:
            target_temp, tau = m.slowdown_temp_celsius - faults["overheat"].params["margin"], 5.0
        self.temp += (target_temp - self.temp) * (1 - math.exp(-dt / tau))

        max_clock = m.sm_clock_max_mhz
        self.sm_clock = (max_clock * clock_factor * (0.97 + 0.03 * rng.random()) if busy > 0.05
                         else self._idle_clock())
        self.counters["DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL"] += load.nvlink_bytes_per_s * dt
        if "nvlink-errors" in faults:
            self._degrade_nvlink(now, dt, faults["nvlink-errors"])
        if "pcie-replay" in faults:
            self.counters["DCGM_FI_DEV_PCIE_REPLAY_COUNTER"] += round(faults["pcie-replay"].params["rate"] * dt)
        self.flags["DCGM_FI_DEV_ROW_REMAP_FAILURE"] = int("row-remap-failure" in faults)
        self.flags["DCGM_FI_DEV_ROW_REMAP_PENDING"] = int("row-remap-pending" in faults)

        self.clock_samples.append((now, bits))
        self.values = self._fields(busy, load)

    def _degrade_nvlink(self, now: float, dt: float, fault: Fault) -> None:
        """A degrading link: CRC errors at `rate` per second (flit CRC most, data CRC a quarter of it),
        each one replayed, and a link recovery (retraining) about every hundred errors. With `growth`
        the rate doubles every `growth` seconds, as a marginal link worsens."""
        rate = fault.params["rate"]
        if fault.params["growth"]:
            rate *= 2 ** min((now - fault.since) / fault.params["growth"], MAX_DOUBLINGS)
        flit = round(rate * dt * self.rng.uniform(0.5, 1.5))
        data = round(flit / 4)
        counters = self.counters
        counters["DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL"] += flit
        counters["DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL"] += data
        counters["DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL"] += flit + data
        counters["DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL"] += int(self.rng.random() < (flit + data) / 100)

    def record_xid(self, now: float, code: int) -> None:
        self.last_xid = code
        self.xid_events.append((now, code))

    def add_dbe(self, now: float, count: int) -> None:
        self.counters["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"] += count
        self.counters["DCGM_FI_DEV_ECC_DBE_AGG_TOTAL"] += count
        if not self.model.row_remapping:
            self.counters["DCGM_FI_DEV_RETIRED_DBE"] += count
        self.record_xid(now, 48)

    def reset(self) -> None:
        """A GPU reset (or the reboot NVIDIA prescribes): volatile counters, the last XID and the
        exporter's XID window start over; lifetime counters keep their values."""
        self.counters["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"] = 0.0
        self.counters["DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"] = 0.0
        self.last_xid = 0
        self.xid_events.clear()

    def _fields(self, busy: float, load: GpuLoad) -> dict[str, float]:
        m, rng = self.model, self.rng
        total = m.memory_mib
        reserved = round(total * 0.0066)
        used = round(load.fb_fraction * total) if load.fb_fraction else rng.choice((0, 1))
        free = max(total - reserved - used, 0)
        intensity = load.intensity * busy
        values: dict[str, float] = {
            "DCGM_FI_DEV_SM_CLOCK": round(self.sm_clock),
            "DCGM_FI_DEV_MEM_CLOCK": m.mem_clock_mhz if (busy > 0.05 or m.hbm) else 405,
            "DCGM_FI_DEV_MEMORY_TEMP": round(self.temp + 4) if m.hbm else 0,
            "DCGM_FI_DEV_GPU_TEMP": round(self.temp),
            "DCGM_FI_DEV_GPU_MAX_OP_TEMP": m.max_operating_temp_celsius,
            "DCGM_FI_DEV_SLOWDOWN_TEMP": m.slowdown_temp_celsius,
            "DCGM_FI_DEV_SHUTDOWN_TEMP": m.shutdown_temp_celsius,
            "DCGM_FI_DEV_GPU_TEMP_LIMIT": round(m.slowdown_temp_celsius - self.temp),
            "DCGM_FI_DEV_POWER_USAGE": round(self.power, 3),
            "DCGM_FI_DEV_POWER_MGMT_LIMIT": m.power_limit_watts,
            "DCGM_FI_DEV_ENFORCED_POWER_LIMIT": m.power_limit_watts,
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": round(self.energy_mj),
            "DCGM_FI_DEV_GPU_UTIL": round(100 * busy) if busy > 0.05 else 0,
            "DCGM_FI_DEV_MEM_COPY_UTIL": round(100 * busy * (0.35 + 0.4 * load.intensity)),
            "DCGM_FI_DEV_ENC_UTIL": 0,
            "DCGM_FI_DEV_DEC_UTIL": 0,
            "DCGM_FI_DEV_XID_ERRORS": self.last_xid,
            "DCGM_FI_DEV_FB_FREE": free,
            "DCGM_FI_DEV_FB_USED": used,
            "DCGM_FI_DEV_FB_RESERVED": reserved,
            "DCGM_FI_DEV_VGPU_LICENSE_STATUS": 0,
            **{name: round(value) for name, value in self.counters.items()},
            **self.flags,
        }
        if m.profiling:
            values.update({
                "DCGM_FI_PROF_GR_ENGINE_ACTIVE": round(busy * (0.9 + 0.08 * rng.random()), 6),
                "DCGM_FI_PROF_SM_ACTIVE": round(busy * (0.55 + 0.35 * load.intensity), 6),
                "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": round(intensity * 0.45, 6),
                "DCGM_FI_PROF_DRAM_ACTIVE": round(busy * (0.3 + 0.5 * load.intensity), 6),
                "DCGM_FI_PROF_PCIE_TX_BYTES": round(1e5 + 4e7 * intensity * rng.random()),
                "DCGM_FI_PROF_PCIE_RX_BYTES": round(2e4 + 6e7 * intensity * rng.random()),
            })
        return values

    def check_fault(self, fault: Fault) -> None:
        """Refuse a fault whose counters this GPU does not have (it would change nothing visible)."""
        needs = {"nvlink-errors": ("NVLink", self.model.nvlink),
                 "row-remap-failure": ("row remapping", self.model.row_remapping),
                 "row-remap-pending": ("row remapping", self.model.row_remapping)}.get(fault.kind.name)
        if needs and not needs[1]:
            raise ConfigError("fault", f"{fault.kind.name}: the {self.model.model_name} has no {needs[0]}",
                              f"inject it on a GPU with {needs[0]}")

    def supports(self, metric: catalog_mod.Metric) -> bool:
        """Whether DCGM returns a value for this field on this GPU (blank fields are not exported)."""
        name, m = metric.name, self.model
        if metric.dcgm and metric.dcgm.profiling:
            return m.profiling
        if "NVLINK" in name:
            return m.nvlink
        if "REMAP" in name:
            return m.row_remapping
        if name.startswith("DCGM_FI_DEV_RETIRED_"):
            return m.datacenter and not m.row_remapping
        if name.startswith("DCGM_FI_DEV_ECC_"):
            return m.datacenter
        return True


@dataclass(frozen=True)
class ExporterOptions:
    collectors: Path = Path(DEFAULT_COLLECTORS)
    collect_interval_ms: int = exposition.COLLECT_INTERVAL_MS
    xid_window_ms: int = exposition.XID_WINDOW_MS
    clock_events_window_ms: int = exposition.CLOCK_EVENTS_WINDOW_MS
    hostname: str | None = None      # None: no hostname label (-n)
    uuid_label: str = "UUID"         # "uuid" with -o/--use-old-namespace
    replace_blanks_in_model_name: bool = False
    driver_version: str = DEFAULT_DRIVER_VERSION
    release: str = PINNED_RELEASE    # the dcgm-exporter release imitated (a key of RELEASES)

    def __post_init__(self) -> None:
        check_release(self.release, "release")

    @property
    def hostname_label(self) -> str:
        return RELEASES[self.release]


def check_release(release: str, field: str) -> str:
    """A dcgm-exporter release the simulator imitates, or a ConfigError naming `field`."""
    if release not in RELEASES:
        raise ConfigError(field, f"dcgm-exporter release {release!r} is not simulated",
                          f"use one of {', '.join(RELEASES)}")
    return release


def _format(value: float, double: bool) -> str:
    return f"{value:f}" if double else f"{int(value)}"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class DcgmExporterSim:
    """Renders the GPUs' values as dcgm-exporter does, for the fields of its counters CSV."""

    def __init__(self, gpus: list[GpuSim], options: ExporterOptions, catalog: Catalog | None = None):
        self.gpus, self.options = gpus, options
        self.catalog = catalog or catalog_mod.load()
        self.lines: list[tuple[CounterLine, catalog_mod.Metric]] = []
        self.label_fields: list[CounterLine] = []
        by_name = {metric.name: metric for metric in self.catalog.layer_metrics("gpu")}
        known_labels = {label.name for label in self.catalog.dcgm_label_fields}
        for line in read_counters(options.collectors):
            if line.prom_type == "label":
                if line.field in known_labels:
                    self.label_fields.append(line)
                else:
                    log.warning("label field %s is not simulated: skipped", line.field)
            elif line.field in by_name:
                self.lines.append((line, by_name[line.field]))
            else:
                log.warning("field %s is not simulated: skipped", line.field)
        # The exporter renders its families in field-ID order, whatever the CSV's order.
        self.lines.sort(key=lambda entry: entry[1].dcgm.field_id)
        self._lock = threading.Lock()
        self._text = ""

    def _base_labels(self, gpu: GpuSim) -> list[tuple[str, str]]:
        model_name = gpu.model.model_name
        if self.options.replace_blanks_in_model_name:
            model_name = "-".join(model_name.split())
        return exposition.gpu_labels(gpu.index, gpu.uuid, model_name, self.options.hostname, self.options.uuid_label,
                                     self.options.hostname_label)

    def _counter_labels(self) -> dict[str, str]:
        values = {exposition.DRIVER_VERSION_FIELD: self.options.driver_version}
        return {line.field: values[line.field] for line in self.label_fields}

    @staticmethod
    def _series(name: str, labels: list[tuple[str, str]], value: str) -> str:
        rendered = ",".join(f'{key}="{_quote(val)}"' for key, val in labels)
        return f"{name}{{{rendered}}} {value}"

    def collect(self, now: float) -> None:
        """Render every present GPU's current values (the exporter serves its last collection)."""
        present = [gpu for gpu in self.gpus if gpu.present]
        counter_labels = self._counter_labels()
        out: list[str] = []
        for line, metric in self.lines:
            if line.field == XID_COUNT:
                out += self._window_counts(line, present, now, counter_labels, "xid")
                continue
            if line.field == CLOCK_EVENTS_COUNT:
                out += self._window_counts(line, present, now, counter_labels, "clock_event")
                continue
            series = []
            double = metric.unit in DOUBLE_UNITS
            for gpu in present:
                if not gpu.supports(metric) or line.field not in gpu.values:
                    continue
                labels = self._base_labels(gpu) + sorted(counter_labels.items())
                if line.field == "DCGM_FI_DEV_XID_ERRORS":
                    code = int(gpu.values[line.field])
                    labels += [("err_code", str(code)), ("err_msg", self.catalog.xids.message_of(code))]
                series.append(self._series(line.field, labels, _format(gpu.values[line.field], double)))
            if series:
                out += [f"# HELP {line.field} {line.help}", f"# TYPE {line.field} {line.prom_type}", *series]
        with self._lock:
            self._text = "\n".join(out) + "\n"

    def _window_counts(self, line: CounterLine, gpus: list[GpuSim], now: float, counter_labels: dict[str, str],
                       key: str) -> list[str]:
        window_ms = self.options.xid_window_ms if key == "xid" else self.options.clock_events_window_ms
        series = []
        for gpu in gpus:
            events = gpu.xid_events if key == "xid" else gpu.clock_samples
            while events and events[0][0] < now - window_ms / 1000:
                events.popleft()
            counts: dict[str, int] = {}
            for _, value in events:
                if key == "xid":
                    counts[str(value)] = counts.get(str(value), 0) + 1
                else:
                    for bit, reason in CLOCK_EVENTS.items():
                        if value & bit:
                            counts[reason] = counts.get(reason, 0) + 1
            base = {**counter_labels, exposition.WINDOW_LABEL: str(window_ms)}
            if not counts:
                series.append(self._series(line.field, self._base_labels(gpu) + sorted(base.items()), "0"))
            for value, count in sorted(counts.items()):
                labels = self._base_labels(gpu) + sorted({**base, key: value}.items())
                series.append(self._series(line.field, labels, str(count)))
        if not series:
            return []
        return [f"# HELP {line.field} {line.help}", f"# TYPE {line.field} {line.prom_type}", *series]

    def render(self) -> str:
        with self._lock:
            return self._text
