"""GPU node: the whole GPU layer of the catalog per host and GPU, the host itself, and its engines.

Temperature and power are drawn against the GPU's own limits (slowdown and shutdown temperature, the
enforced power limit), never against fixed values that are wrong for most cards.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import units

from llmobs.catalog import ENGINE_GPU_INFO
from llmobs.dashboards.context import GPU_UID, Context
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

# DCGM reports unsupported fields as a huge blank sentinel (9223372036854775794): keep plausible values only.
PLAUSIBLE = "< 1000"
ANY_FAULT = Steps.rising(None, 1)


def build(ctx: Context) -> Board:
    t = ctx.settings.thresholds
    g, legend = ctx.gpu, ctx.gpu_legend
    gpu_labels = f"{ctx.gpu_by}, UUID, modelName"
    board = Board(
        GPU_UID, "GPU node",
        "Every DCGM field per host and GPU: utilisation and profiling ratios, framebuffer, temperature against"
        " the GPU's own slowdown threshold, power against its own limit, clocks and throttling, XID, ECC and"
        " row remapping, PCIe and NVLink, energy; then the host (CPU, memory, disks) and its vLLM engines.",
        [ctx.host_variable("DCGM_FI_DEV_GPU_TEMP"), ctx.gpu_variable()],
    )
    margin, power_ratio, kv_cache = (
        "host_gpu:dcgm_temp_margin:celsius", "host_gpu:dcgm_power_usage:ratio_limit",
        "instance_model:vllm_kv_cache_usage:max")
    thermal_throttle = "host_gpu:dcgm_thermal_throttle:ratio_rate5m"

    board.row("Overview")
    board.add(
        stat_panel("Exporters up", "Whether Prometheus could scrape the host's dcgm-exporter and node_exporter."
                   " Good: 1; 0 means the exporter is down and its panels go stale.", units.Short,
                   [Target(ctx.by_host("up", f'job=~"{ctx.jobs.dcgm}|{ctx.jobs.node}"'),
                           "{{job}} " + f"{{{{{ctx.host}}}}}")],
                   thresholds=Steps(BAD, ((1, GOOD),)), width=8),
        stat_panel("GPUs reporting", "GPUs the host's dcgm-exporter reports (host:dcgm_gpus:count). Compare"
                   " with the number installed: one missing fell off the bus.", units.Short,
                   [Target(ctx.by_host("host:dcgm_gpus:count"), f"{{{{{ctx.host}}}}}")], width=8),
        stat_panel("Energy used in the time range", "Energy the selected GPUs used over the dashboard's time"
                   " range, from their energy counters.", units.KiloWattHour,
                   [Target(f"sum(increase({g('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION')}[$__range])) / 3.6e9")],
                   width=8),
        merged_table_panel("GPUs", "One row per GPU with its model and UUID: temperature, thermal margin,"
                           " power against its enforced limit, utilisation, framebuffer use, XID and"
                           " uncorrectable ECC errors. Margin and power are coloured by the alert thresholds.", [
                               Column(f"max by ({gpu_labels}) ({g('DCGM_FI_DEV_GPU_TEMP')})", "Temperature",
                                      units.Celsius),
                               Column(g(margin), "Thermal margin", units.Celsius, ctx.alert_steps(margin)),
                               Column(g(power_ratio), "Power / limit", units.PercentUnit,
                                      ctx.alert_steps(power_ratio)),
                               Column(f"max by ({gpu_labels}) ({g('DCGM_FI_DEV_GPU_UTIL')})", "Utilisation",
                                      units.Percent),
                               Column(g("host_gpu:dcgm_fb_used:ratio"), "Framebuffer used", units.PercentUnit),
                               Column(f"sum by ({gpu_labels}) ({g('DCGM_EXP_XID_ERRORS_COUNT')})", "XID (window)",
                                      units.Short, ANY_FAULT),
                               Column(f"max by ({gpu_labels}) ({g('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL')})",
                                      "Uncorrectable ECC", units.Short, ANY_FAULT),
                           ], height=7),
    )

    board.row("Utilisation")
    profiling = (
        ("SM active", "DCGM_FI_PROF_SM_ACTIVE", "Share of cycles with at least one warp on an SM: a truer"
         " measure of use than GPU utilisation."),
        ("Tensor pipe active", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "Share of cycles the tensor cores were busy."),
        ("DRAM active", "DCGM_FI_PROF_DRAM_ACTIVE", "Share of cycles the memory interface was busy. Decode-heavy"
         " LLM serving is usually bound here, so high is expected."),
        ("Graphics engine active", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "Share of time any graphics or compute"
         " engine was active."),
    )
    board.add(
        timeseries_panel("GPU utilisation", "Share of time a kernel was running, per GPU. Near 100 % is normal"
                         " for a busy inference server and never alerts; near 0 % while requests wait is a"
                         " problem.", units.Percent, [Target(g("DCGM_FI_DEV_GPU_UTIL"), legend)],
                         min_value=0, max_value=100),
        timeseries_panel("Memory copy and video engines", "Share of time device memory was read or written,"
                         " and the video encoder and decoder use (zero for LLM serving).", units.Percent,
                         [Target(g("DCGM_FI_DEV_MEM_COPY_UTIL"), f"memory {legend}"),
                          Target(g("DCGM_FI_DEV_ENC_UTIL"), f"encoder {legend}"),
                          Target(g("DCGM_FI_DEV_DEC_UTIL"), f"decoder {legend}")], min_value=0, max_value=100),
        *(timeseries_panel(title, text + ctx.requirement(metric), units.PercentUnit,
                           [Target(g(metric), legend)], min_value=0, max_value=1, width=6)
          for title, metric, text in profiling),
    )

    board.row("Memory")
    board.add(
        timeseries_panel("Framebuffer used", "Share of device memory in use per GPU. vLLM preallocates about"
                         " 90 % (gpu_memory_utilization) at start, so a high, flat line is normal.",
                         units.PercentUnit, [Target(g("host_gpu:dcgm_fb_used:ratio"), legend)],
                         min_value=0, max_value=1),
        timeseries_panel("Framebuffer", "Device memory used, free and reserved by the driver, per GPU (their"
                         " sum is the card's memory).", units.Mebibytes,
                         [Target(g(f"DCGM_FI_DEV_FB_{part.upper()}"), f"{part} {legend}")
                          for part in ("used", "free", "reserved")], stacked=True),
    )

    board.row("Temperature and power")
    limits = "^(slowdown|shutdown|max operating|enforced limit|management limit) "
    board.add(
        timeseries_panel("Temperature against the GPU's own limits", "GPU die temperature with the card's own"
                         " slowdown, shutdown and maximum operating temperatures (dashed). Good: well below"
                         " slowdown; the distance is the thermal margin next to this panel.", units.Celsius,
                         [Target(g("DCGM_FI_DEV_GPU_TEMP"), legend),
                          Target(f"{g('DCGM_FI_DEV_SLOWDOWN_TEMP')} {PLAUSIBLE}", f"slowdown {legend}"),
                          Target(f"{g('DCGM_FI_DEV_SHUTDOWN_TEMP')} {PLAUSIBLE}", f"shutdown {legend}"),
                          Target(f"{g('DCGM_FI_DEV_GPU_MAX_OP_TEMP')} {PLAUSIBLE}", f"max operating {legend}")],
                         dashed=limits),
        timeseries_panel("Thermal margin", "Degrees left before the GPU's own slowdown threshold (the thermal"
                         " margin field, else slowdown minus temperature). Good: above the lines."
                         + ctx.alert_note(margin), units.Celsius, [Target(g(margin), legend)],
                         thresholds=ctx.alert_steps(margin)),
        timeseries_panel("Memory temperature", "HBM temperature per GPU. Cards without a memory sensor report"
                         " DCGM's blank value, which is left out.", units.Celsius,
                         [Target(f"{g('DCGM_FI_DEV_MEMORY_TEMP')} {PLAUSIBLE}", legend)]),
        timeseries_panel("Power against the GPU's own limit", "Board power draw with the limit the driver"
                         " enforces and the management limit (dashed). Near the limit under load is healthy.",
                         units.Watt,
                         [Target(g("DCGM_FI_DEV_POWER_USAGE"), legend),
                          Target(g("DCGM_FI_DEV_ENFORCED_POWER_LIMIT"), f"enforced limit {legend}"),
                          Target(g("DCGM_FI_DEV_POWER_MGMT_LIMIT"), f"management limit {legend}"),
                          Target(f"rate({g('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION')}[$__rate_interval]) / 1000",
                                 f"from energy counter {legend}")],
                         dashed=limits),
        timeseries_panel("Power / enforced limit", "Power draw over the enforced limit per GPU. Up to 100 % is"
                         " normal under load; above the line the limiter is not holding." + ctx.alert_note(power_ratio),
                         units.PercentUnit, [Target(g(power_ratio), legend)], thresholds=ctx.alert_steps(power_ratio),
                         min_value=0),
    )

    board.row("Clocks and throttling")
    board.add(
        timeseries_panel("Clocks", "SM and memory clocks per GPU. The SM clock drops when the GPU is power- or"
                         " thermally capped.", units.Hertz,
                         [Target(f"{g('DCGM_FI_DEV_SM_CLOCK')} * 1e6", f"SM {legend}"),
                          Target(f"{g('DCGM_FI_DEV_MEM_CLOCK')} * 1e6", f"memory {legend}")], width=8),
        timeseries_panel("Time throttled", "Share of the last 5 minutes each GPU was held back by its thermal or"
                         " power limit (violation counters). Power capping under load is the limiter at work and"
                         " never alerts." + ctx.alert_note(thermal_throttle), units.PercentUnit,
                         [Target(g(f"host_gpu:dcgm_{kind}_throttle:ratio_rate5m"), f"{kind} {legend}")
                          for kind in ("thermal", "power")],
                         thresholds=ctx.alert_steps(thermal_throttle), min_value=0, width=8),
        timeseries_panel("Clock events by reason", "Clock-event (throttle) reasons dcgm-exporter counted in its"
                         " window, per GPU: sw_power_cap is routine under load; hw_slowdown, hw_thermal,"
                         " sw_thermal and hw_power_brake are not.", units.Short,
                         [Target(f"sum by ({ctx.gpu_by}, clock_event) ({g('DCGM_EXP_CLOCK_EVENTS_COUNT')})",
                                 f"{{{{clock_event}}}} {legend}")], bars=True, width=8),
    )

    board.row("Errors")
    board.add(
        timeseries_panel("XID errors by code", "XID errors per code that dcgm-exporter counted in its window,"
                         " per GPU. Good: all zero. Codes 48, 62, 64, 74, 79, 95, 109, 119 and similar need a"
                         " reset or reboot; 13, 31, 43 and 45 usually come from the application.",
                         units.Short,
                         [Target(f"sum by ({ctx.gpu_by}, xid) ({g('DCGM_EXP_XID_ERRORS_COUNT')})",
                                 f"XID {{{{xid}}}} {legend}")], thresholds=ANY_FAULT, bars=True),
        table_panel("Last XID per GPU", "The code (value) and message of the last XID each GPU logged since the"
                    " exporter started; 0 means none.", units.NoUnit, [Target(g("DCGM_FI_DEV_XID_ERRORS"))],
                    # dcgm-exporter spells its hostname label Hostname up to 4.5.3-4.8.2, hostname after.
                    hide=("Time", "__name__", "job", "instance", "device", "pci_bus_id", "Hostname", "hostname",
                          "DCGM_FI_DRIVER_VERSION"), width=12),
        timeseries_panel("Uncorrectable ECC errors", "Double-bit ECC errors since the driver was loaded"
                         " (volatile) and over the board's life (aggregate). Good: 0; any volatile error needs a"
                         " GPU reset.", units.Short,
                         [Target(g("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"), f"volatile {legend}"),
                          Target(g("DCGM_FI_DEV_ECC_DBE_AGG_TOTAL"), f"aggregate {legend}")],
                         thresholds=ANY_FAULT, width=8),
        timeseries_panel("Correctable ECC errors", "Single-bit ECC errors since the driver was loaded, corrected"
                         " by the hardware. Informational; a fast rise can precede uncorrectable errors.",
                         units.Short, [Target(g("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"), legend)], width=8),
        timeseries_panel("Remapped rows", "HBM rows remapped after correctable and uncorrectable errors"
                         " (Ampere and later). A few are normal; the failure and pending flags matter.",
                         units.Short,
                         [Target(g("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS"), f"correctable {legend}"),
                          Target(g("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS"), f"uncorrectable {legend}")],
                         width=8),
        timeseries_panel("Row remap failure and pending", "1 when row remapping failed (replace the GPU) or a"
                         " remap waits for a GPU reset. Good: 0.", units.Short,
                         [Target(g("DCGM_FI_DEV_ROW_REMAP_FAILURE"), f"failure {legend}"),
                          Target(g("DCGM_FI_DEV_ROW_REMAP_PENDING"), f"pending {legend}")],
                         thresholds=ANY_FAULT, min_value=0, width=12),
        timeseries_panel("Retired pages", "Pages retired after double-bit errors and pages waiting for"
                         " retirement at the next driver reload (GPUs before Ampere, such as T4 and V100;"
                         " later GPUs remap rows instead). Good: none pending.", units.Short,
                         [Target(g("DCGM_FI_DEV_RETIRED_DBE"), f"retired {legend}"),
                          Target(g("DCGM_FI_DEV_RETIRED_PENDING"), f"pending {legend}")], width=12),
    )

    board.row("PCIe and NVLink")
    board.add(
        timeseries_panel("PCIe replays/s", "PCIe link replays per second per GPU. Good: zero; a steady rate"
                         " points at a bad riser, slot or cable.", PER_SECOND,
                         [Target(f"rate({g('DCGM_FI_DEV_PCIE_REPLAY_COUNTER')}[$__rate_interval])", legend)],
                         width=6),
        timeseries_panel("PCIe traffic", "Bytes per second sent and received over PCIe per GPU."
                         + ctx.requirement("DCGM_FI_PROF_PCIE_TX_BYTES"), units.BytesPerSecondSI,
                         [Target(g("DCGM_FI_PROF_PCIE_TX_BYTES"), f"tx {legend}"),
                          Target(g("DCGM_FI_PROF_PCIE_RX_BYTES"), f"rx {legend}")], width=6),
        timeseries_panel("NVLink traffic", "Bytes per second over all NVLink links per GPU (zero on GPUs"
                         " without NVLink). Tensor-parallel engines move activations here.", units.BytesPerSecondSI,
                         [Target(f"rate({g('DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL')}[$__rate_interval])", legend)],
                         width=6),
        timeseries_panel("NVLink errors/s", "NVLink CRC flit errors, replays and link recoveries per second per"
                         " GPU. Good: zero; a rising rate means a degrading link.", PER_SECOND,
                         [Target(f"rate({g(f'DCGM_FI_DEV_NVLINK_{kind.upper()}_ERROR_COUNT_TOTAL')}"
                                 "[$__rate_interval])", f"{kind.replace('_', ' ')} {legend}")
                          for kind in ("crc_flit", "replay", "recovery")], width=6),
    )

    board.row("Host")
    h = ctx.host
    filesystems = ctx.filesystems
    idle_cpu = ctx.by_host("node_cpu_seconds_total", 'mode="idle"')
    board.add(
        timeseries_panel("CPU busy", "Share of CPU time not idle, per host (node_exporter). A host whose CPUs"
                         " are saturated slows tokenisation and scheduling.", units.PercentUnit,
                         [Target(f"1 - avg by ({h}) (rate({idle_cpu}[$__rate_interval]))", f"{{{{{h}}}}}")],
                         min_value=0, max_value=1, width=8),
        timeseries_panel("Memory available", "Share of host memory available to new processes.",
                         units.PercentUnit,
                         [Target(f"{ctx.by_host('node_memory_MemAvailable_bytes')}"
                                 f" / {ctx.by_host('node_memory_MemTotal_bytes')}", f"{{{{{h}}}}}")],
                         min_value=0, max_value=1, width=8),
        timeseries_panel("Free space on model and data volumes", "Free share of each watched filesystem"
                         " (thresholds.disk_mountpoints). Dashed lines: the warning and critical disk alerts"
                         " (thresholds.disk_free_ratio_*). Good: above them.", units.PercentUnit,
                         [Target(f"{ctx.by_host('node_filesystem_avail_bytes', filesystems)}"
                                 f" / {ctx.by_host('node_filesystem_size_bytes', filesystems)}",
                                 f"{{{{mountpoint}}}} {{{{{h}}}}}")],
                         thresholds=Steps.falling(t.disk_free_ratio_warning, t.disk_free_ratio_critical),
                         min_value=0, max_value=1, width=8),
    )

    board.row("Engines on this host")
    engine_legend = "{{model_name}} @ {{instance}}"
    board.add(
        table_panel("Engines and their GPUs", "Which vLLM engine runs on which GPU of the selected hosts, as"
                    " declared in the inventory (vllm_endpoints, llmobs:engine_gpu:info). Click a row to open"
                    " the engine's vLLM dashboard.", units.Short,
                    [Target(ctx.gpu(ENGINE_GPU_INFO))], hide=("Time", "Value", "__name__"),
                    links=[ctx.engine_link()], width=8),
        timeseries_panel("Generated tokens/s by engine", "Output tokens per second of each vLLM engine on the"
                         " selected hosts. Click a series to open the engine's vLLM dashboard.",
                         TOKENS_PER_SECOND, [Target(ctx.by_host("instance_model:vllm_generation_tokens:rate5m"),
                                                    engine_legend)], links=[ctx.engine_link()], width=8),
        timeseries_panel("KV-cache usage by engine", "Share of KV-cache blocks in use per engine on the"
                         " selected hosts." + ctx.alert_note(kv_cache), units.PercentUnit,
                         [Target(ctx.by_host(kv_cache), engine_legend)],
                         thresholds=ctx.alert_steps(kv_cache), min_value=0, max_value=1,
                         links=[ctx.engine_link()], width=8),
    )
    return board
