"""GPU node: the whole GPU layer of the catalog per host and GPU, the host itself, and its engines.

Temperature and power are drawn against the GPU's own limits (slowdown and shutdown temperature, the
enforced power limit), never against fixed values that are wrong for most cards. Each panel is a named
function over the queries of `llmobs.dashboards.queries`; `build()` lays them out in rows.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models import units

from llmobs.conventions import ENGINE_GPU_INFO
from llmobs.dashboards import common
from llmobs.dashboards.context import Context
from llmobs.dashboards.panels import (
    BAD,
    GOOD,
    PER_SECOND,
    TOKENS_PER_SECOND,
    Board,
    Column,
    Steps,
    Target,
    merged_table_panel,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from llmobs.dashboards.queries import engine, gpu, host
from llmobs.rules.alerts import filesystems

ANY_FAULT = Steps.rising(None, 1)
# Series drawn dashed next to a reading: the card's own limits.
LIMITS = "^(slowdown|shutdown|max operating|enforced limit|management limit) "
# The labels of DCGM_FI_DEV_XID_ERRORS that the "Last XID per GPU" table leaves out: Grafana's and the
# target's, the device ids, and dcgm-exporter's hostname label (spelled Hostname up to 4.5.3-4.8.2, hostname
# after).
XID_TABLE_HIDDEN = ("Time", "__name__", "job", "instance", "device", "pci_bus_id", "Hostname", "hostname",
                    "DCGM_FI_DRIVER_VERSION")
# DCGM profiling (DCP) ratios: title, field, what it measures.
PROFILING = (
    ("SM active", "DCGM_FI_PROF_SM_ACTIVE", "Share of cycles with at least one warp on an SM: a truer"
     " measure of use than GPU utilisation."),
    ("Tensor pipe active", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "Share of cycles the tensor cores were busy."),
    ("DRAM active", "DCGM_FI_PROF_DRAM_ACTIVE", "Share of cycles the memory interface was busy. Decode-heavy"
     " LLM serving is usually bound here, so high is expected."),
    ("Graphics engine active", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "Share of time any graphics or compute"
     " engine was active."),
)
ENGINE_LEGEND = "{{model_name}} @ {{instance}}"


def _fields(ctx: Context, *fields: tuple[str, str]) -> list[Target]:
    """One target per (DCGM field, legend prefix) of the selected GPUs."""
    return [Target(ctx.gpus.sel(field), f"{prefix} {ctx.gpu_legend}" if prefix else ctx.gpu_legend)
            for field, prefix in fields]


# ------------------------------------------------------------------ overview
def exporters_up(ctx: Context) -> stat.Panel:
    jobs = ctx.settings.jobs
    return stat_panel(
        "Exporters up", "Whether Prometheus could scrape the host's dcgm-exporter and node_exporter. Good: 1; 0"
        " means the exporter is down and its panels go stale.", units.Short,
        [Target(host.exporters_up(ctx.hosts, (jobs.dcgm, jobs.node)), "{{job}} " + ctx.host_legend)],
        thresholds=Steps(BAD, ((1, GOOD),)), width=8)


def gpus_reporting(ctx: Context) -> stat.Panel:
    return stat_panel(
        "GPUs reporting", f"GPUs the host's dcgm-exporter reports ({gpu.HOST_GPUS}). Compare with the number"
        " installed: one missing fell off the bus.", units.Short,
        [Target(ctx.hosts.sel(gpu.HOST_GPUS), ctx.host_legend)], width=8)


def energy_used(ctx: Context) -> stat.Panel:
    return stat_panel(
        "Energy used in the time range", "Energy the selected GPUs used over the dashboard's time range, from"
        " their energy counters.", units.KiloWattHour, [Target(gpu.energy_used_kwh(ctx.gpus))], width=8)


def gpu_table(ctx: Context) -> table.Panel:
    labels = gpu.identity_labels(ctx.host)

    def per_gpu(operator: str, field: str) -> str:
        return gpu.per_gpu(ctx.gpus, operator, field, labels)

    return merged_table_panel(
        "GPUs", "One row per GPU with its model and UUID: temperature, thermal margin, power against its"
        " enforced limit, utilisation, framebuffer use, XID and uncorrectable ECC errors. Margin and power are"
        " coloured by the alert thresholds.", [
            Column(per_gpu("max", "DCGM_FI_DEV_GPU_TEMP"), "Temperature", units.Celsius),
            Column(ctx.gpus.sel(gpu.TEMP_MARGIN), "Thermal margin", units.Celsius, ctx.alert_steps(gpu.TEMP_MARGIN)),
            Column(ctx.gpus.sel(gpu.POWER_RATIO), "Power / limit", units.PercentUnit,
                   ctx.alert_steps(gpu.POWER_RATIO)),
            Column(per_gpu("max", "DCGM_FI_DEV_GPU_UTIL"), "Utilisation", units.Percent),
            Column(ctx.gpus.sel(gpu.FB_USED_RATIO), "Framebuffer used", units.PercentUnit),
            Column(per_gpu("sum", "DCGM_EXP_XID_ERRORS_COUNT"), "XID (window)", units.Short, ANY_FAULT),
            Column(per_gpu("max", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"), "Uncorrectable ECC", units.Short, ANY_FAULT),
        ], height=7)


# ------------------------------------------------------------------ utilisation and memory
def utilisation(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "GPU utilisation", "Share of time a kernel was running, per GPU. Near 100 % is normal for a busy"
        " inference server and never alerts; near 0 % while requests wait is a problem.", units.Percent,
        _fields(ctx, ("DCGM_FI_DEV_GPU_UTIL", "")), min_value=0, max_value=100)


def copy_and_video_engines(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Memory copy and video engines", "Share of time device memory was read or written, and the video"
        " encoder and decoder use (zero for LLM serving).", units.Percent,
        _fields(ctx, ("DCGM_FI_DEV_MEM_COPY_UTIL", "memory"), ("DCGM_FI_DEV_ENC_UTIL", "encoder"),
                ("DCGM_FI_DEV_DEC_UTIL", "decoder")), min_value=0, max_value=100)


def profiling_ratios(ctx: Context) -> list[timeseries.Panel]:
    return [timeseries_panel(title, text + ctx.requirement(field), units.PercentUnit, _fields(ctx, (field, "")),
                             min_value=0, max_value=1, width=6)
            for title, field, text in PROFILING]


def framebuffer_used(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Framebuffer used", "Share of device memory in use per GPU. vLLM preallocates about 90 %"
        " (gpu_memory_utilization) at start, so a high, flat line is normal.", units.PercentUnit,
        _fields(ctx, (gpu.FB_USED_RATIO, "")), min_value=0, max_value=1)


def framebuffer(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Framebuffer", "Device memory used, free and reserved by the driver, per GPU (their sum is the card's"
        " memory).", units.Mebibytes,
        _fields(ctx, *((f"DCGM_FI_DEV_FB_{part.upper()}", part) for part in ("used", "free", "reserved"))),
        stacked=True)


# ------------------------------------------------------------------ temperature and power
def temperature(ctx: Context) -> timeseries.Panel:
    limits = [Target(gpu.plausible(ctx.gpus, field), f"{name} {ctx.gpu_legend}")
              for field, name in (("DCGM_FI_DEV_SLOWDOWN_TEMP", "slowdown"), ("DCGM_FI_DEV_SHUTDOWN_TEMP", "shutdown"),
                                  ("DCGM_FI_DEV_GPU_MAX_OP_TEMP", "max operating"))]
    return timeseries_panel(
        "Temperature against the GPU's own limits", "GPU die temperature with the card's own slowdown, shutdown"
        " and maximum operating temperatures (dashed). Good: well below slowdown; the distance is the thermal"
        " margin next to this panel.", units.Celsius,
        [*_fields(ctx, ("DCGM_FI_DEV_GPU_TEMP", "")), *limits], dashed=LIMITS)


def thermal_margin(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Thermal margin", "Degrees left before the GPU's own slowdown threshold (the thermal margin field, else"
        " slowdown minus temperature). Good: above the lines." + ctx.alert_note(gpu.TEMP_MARGIN), units.Celsius,
        _fields(ctx, (gpu.TEMP_MARGIN, "")), thresholds=ctx.alert_steps(gpu.TEMP_MARGIN))


def memory_temperature(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Memory temperature", "HBM temperature per GPU. Cards without a memory sensor report DCGM's blank value,"
        " which is left out.", units.Celsius,
        [Target(gpu.plausible(ctx.gpus, "DCGM_FI_DEV_MEMORY_TEMP"), ctx.gpu_legend)])


def power(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Power against the GPU's own limit", "Board power draw with the limit the driver enforces and the"
        " management limit (dashed). Near the limit under load is healthy.", units.Watt,
        [*_fields(ctx, ("DCGM_FI_DEV_POWER_USAGE", ""), ("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", "enforced limit"),
                  ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "management limit")),
         Target(gpu.power_from_energy(ctx.gpus), f"from energy counter {ctx.gpu_legend}")],
        dashed=LIMITS)


def power_over_limit(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Power / enforced limit", "Power draw over the enforced limit per GPU. Up to 100 % is normal under load;"
        " above the line the limiter is not holding." + ctx.alert_note(gpu.POWER_RATIO), units.PercentUnit,
        _fields(ctx, (gpu.POWER_RATIO, "")), thresholds=ctx.alert_steps(gpu.POWER_RATIO), min_value=0)


# ------------------------------------------------------------------ clocks and throttling
def clocks(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Clocks", "SM and memory clocks per GPU. The SM clock drops when the GPU is power- or thermally"
        " capped.", units.Hertz,
        [Target(gpu.clock_hz(ctx.gpus, field), f"{name} {ctx.gpu_legend}")
         for field, name in (("DCGM_FI_DEV_SM_CLOCK", "SM"), ("DCGM_FI_DEV_MEM_CLOCK", "memory"))], width=8)


def time_throttled(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Time throttled", "Share of the last 5 minutes each GPU was held back by its thermal or power limit"
        " (violation counters). Power capping under load is the limiter at work and never alerts."
        + ctx.alert_note(gpu.THERMAL_THROTTLE), units.PercentUnit,
        _fields(ctx, (gpu.THERMAL_THROTTLE, "thermal"), (gpu.POWER_THROTTLE, "power")),
        thresholds=ctx.alert_steps(gpu.THERMAL_THROTTLE), min_value=0, width=8)


def clock_events(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Clock events by reason", "Clock-event (throttle) reasons dcgm-exporter counted in its window, per GPU:"
        " sw_power_cap is routine under load; hw_slowdown, hw_thermal, sw_thermal and hw_power_brake are not.",
        units.Short,
        [Target(gpu.per_gpu(ctx.gpus, "sum", "DCGM_EXP_CLOCK_EVENTS_COUNT", (*gpu.gpu_labels(ctx.host), "clock_event")),
                f"{{{{clock_event}}}} {ctx.gpu_legend}")], bars=True, width=8)


# ------------------------------------------------------------------ errors
def xid_by_code(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "XID errors by code", "XID errors per code that dcgm-exporter counted in its window, per GPU. Good: all"
        " zero. Codes 48, 62, 64, 74, 79, 95, 109, 119 and similar need a reset or reboot; 13, 31, 43 and 45"
        " usually come from the application.", units.Short,
        [Target(gpu.per_gpu(ctx.gpus, "sum", "DCGM_EXP_XID_ERRORS_COUNT", (*gpu.gpu_labels(ctx.host), "xid")),
                f"XID {{{{xid}}}} {ctx.gpu_legend}")], thresholds=ANY_FAULT, bars=True)


def last_xid(ctx: Context) -> table.Panel:
    return table_panel(
        "Last XID per GPU", "The code (value) and message of the last XID each GPU logged since the exporter"
        " started; 0 means none.", units.NoUnit, [Target(ctx.gpus.sel("DCGM_FI_DEV_XID_ERRORS"))],
        hide=XID_TABLE_HIDDEN, width=12)


def uncorrectable_ecc(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Uncorrectable ECC errors", "Double-bit ECC errors since the driver was loaded (volatile) and over the"
        " board's life (aggregate). Good: 0; any volatile error needs a GPU reset.", units.Short,
        _fields(ctx, ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "volatile"), ("DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "aggregate")),
        thresholds=ANY_FAULT, width=8)


def correctable_ecc(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Correctable ECC errors", "Single-bit ECC errors since the driver was loaded, corrected by the hardware."
        " Informational; a fast rise can precede uncorrectable errors.", units.Short,
        _fields(ctx, ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "")), width=8)


def remapped_rows(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Remapped rows", "HBM rows remapped after correctable and uncorrectable errors (Ampere and later). A few"
        " are normal; the failure and pending flags matter.", units.Short,
        _fields(ctx, ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "correctable"),
                ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "uncorrectable")), width=8)


def row_remap_flags(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Row remap failure and pending", "1 when row remapping failed (replace the GPU) or a remap waits for a"
        " GPU reset. Good: 0.", units.Short,
        _fields(ctx, ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "failure"), ("DCGM_FI_DEV_ROW_REMAP_PENDING", "pending")),
        thresholds=ANY_FAULT, min_value=0, width=12)


def retired_pages(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Retired pages", "Pages retired after double-bit errors and pages waiting for retirement at the next"
        " driver reload (GPUs before Ampere, such as T4 and V100; later GPUs remap rows instead). Good: none"
        " pending.", units.Short,
        _fields(ctx, ("DCGM_FI_DEV_RETIRED_DBE", "retired"), ("DCGM_FI_DEV_RETIRED_PENDING", "pending")), width=12)


# ------------------------------------------------------------------ PCIe and NVLink
def pcie_replays(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "PCIe replays/s", "PCIe link replays per second per GPU. Good: zero; a steady rate points at a bad riser,"
        " slot or cable.", PER_SECOND,
        [Target(gpu.per_second(ctx.gpus, "DCGM_FI_DEV_PCIE_REPLAY_COUNTER"), ctx.gpu_legend)], width=6)


def pcie_traffic(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "PCIe traffic", "Bytes per second sent and received over PCIe per GPU."
        + ctx.requirement("DCGM_FI_PROF_PCIE_TX_BYTES"), units.BytesPerSecondSI,
        _fields(ctx, ("DCGM_FI_PROF_PCIE_TX_BYTES", "tx"), ("DCGM_FI_PROF_PCIE_RX_BYTES", "rx")), width=6)


def nvlink_traffic(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "NVLink traffic", "Bytes per second over all NVLink links per GPU (zero on GPUs without NVLink)."
        " Tensor-parallel engines move activations here.", units.BytesPerSecondSI,
        [Target(gpu.per_second(ctx.gpus, "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL"), ctx.gpu_legend)], width=6)


def nvlink_errors(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "NVLink errors/s", "NVLink CRC flit errors, replays and link recoveries per second per GPU. Good: zero; a"
        " rising rate means a degrading link.", PER_SECOND,
        [Target(gpu.per_second(ctx.gpus, f"DCGM_FI_DEV_NVLINK_{kind.upper()}_ERROR_COUNT_TOTAL"),
                f"{kind.replace('_', ' ')} {ctx.gpu_legend}") for kind in ("crc_flit", "replay", "recovery")],
        width=6)


# ------------------------------------------------------------------ the host and its engines
def cpu_busy(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "CPU busy", "Share of CPU time not idle, per host (node_exporter). A host whose CPUs are saturated slows"
        " tokenisation and scheduling.", units.PercentUnit,
        [Target(host.cpu_busy(ctx.hosts, ctx.host), ctx.host_legend)], min_value=0, max_value=1, width=8)


def memory_available(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Memory available", "Share of host memory available to new processes.", units.PercentUnit,
        [Target(host.memory_available(ctx.hosts), ctx.host_legend)], min_value=0, max_value=1, width=8)


def free_space(ctx: Context) -> timeseries.Panel:
    thresholds = ctx.settings.thresholds
    return timeseries_panel(
        "Free space on model and data volumes", "Free share of each watched filesystem"
        " (thresholds.disk_mountpoints). Dashed lines: the warning and critical disk alerts"
        " (thresholds.disk_free_ratio_*). Good: above them.", units.PercentUnit,
        [Target(host.filesystem_free(ctx.hosts, filesystems(thresholds)), "{{mountpoint}} " + ctx.host_legend)],
        thresholds=Steps.falling(thresholds.disk_free_ratio_warning, thresholds.disk_free_ratio_critical),
        min_value=0, max_value=1, width=8)


def engine_gpus(ctx: Context) -> table.Panel:
    return table_panel(
        "Engines and their GPUs", "Which vLLM engine runs on which GPU of the selected hosts, as declared in the"
        f" inventory (vllm_endpoints, {ENGINE_GPU_INFO}). Click a row to open the engine's vLLM dashboard.",
        units.Short, [Target(ctx.gpus.sel(ENGINE_GPU_INFO))], hide=("Time", "Value", "__name__"),
        links=[common.engine_link(ctx)], width=8)


def engine_tokens(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "Generated tokens/s by engine", "Output tokens per second of each vLLM engine on the selected hosts."
        " Click a series to open the engine's vLLM dashboard.", TOKENS_PER_SECOND,
        [Target(ctx.hosts.sel(engine.GENERATION_TOKENS), ENGINE_LEGEND)], links=[common.engine_link(ctx)], width=8)


def engine_kv_cache(ctx: Context) -> timeseries.Panel:
    return timeseries_panel(
        "KV-cache usage by engine", "Share of KV-cache blocks in use per engine on the selected hosts."
        + ctx.alert_note(engine.KV_CACHE_USAGE), units.PercentUnit,
        [Target(ctx.hosts.sel(engine.KV_CACHE_USAGE), ENGINE_LEGEND)],
        thresholds=ctx.alert_steps(engine.KV_CACHE_USAGE), min_value=0, max_value=1, links=[common.engine_link(ctx)],
        width=8)


# ------------------------------------------------------------------ layout
def build(ctx: Context) -> Board:
    return (
        Board(common.GPU_UID, "GPU node",
              "Every DCGM field per host and GPU: utilisation and profiling ratios, framebuffer, temperature against"
              " the GPU's own slowdown threshold, power against its own limit, clocks and throttling, XID, ECC and"
              " row remapping, PCIe and NVLink, energy; then the host (CPU, memory, disks) and its vLLM engines.",
              [common.host_variable(ctx, common.GPU_SERIES), common.gpu_variable(ctx)])
        .row("Overview").add(exporters_up(ctx), gpus_reporting(ctx), energy_used(ctx), gpu_table(ctx))
        .row("Utilisation").add(utilisation(ctx), copy_and_video_engines(ctx), *profiling_ratios(ctx))
        .row("Memory").add(framebuffer_used(ctx), framebuffer(ctx))
        .row("Temperature and power").add(temperature(ctx), thermal_margin(ctx), memory_temperature(ctx), power(ctx),
                                          power_over_limit(ctx))
        .row("Clocks and throttling").add(clocks(ctx), time_throttled(ctx), clock_events(ctx))
        .row("Errors").add(xid_by_code(ctx), last_xid(ctx), uncorrectable_ecc(ctx), correctable_ecc(ctx),
                           remapped_rows(ctx), row_remap_flags(ctx), retired_pages(ctx))
        .row("PCIe and NVLink").add(pcie_replays(ctx), pcie_traffic(ctx), nvlink_traffic(ctx), nvlink_errors(ctx))
        .row("Host").add(cpu_busy(ctx), memory_available(ctx), free_space(ctx))
        .row("Engines on this host").add(engine_gpus(ctx), engine_tokens(ctx), engine_kv_cache(ctx))
    )
