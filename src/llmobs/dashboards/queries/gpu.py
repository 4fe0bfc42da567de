"""GPUs, from dcgm-exporter: per GPU of the selected hosts, per host and across the fleet, with the
recording rules of the GPU layer."""

from __future__ import annotations

from llmobs.dashboards.queries import RATE
from llmobs.promql import Promql, aggregate

# Recording rules (recording_rules.yaml, group llmobs.gpu).
TEMP_MARGIN = "host_gpu:dcgm_temp_margin:celsius"
POWER_RATIO = "host_gpu:dcgm_power_usage:ratio_limit"
FB_USED_RATIO = "host_gpu:dcgm_fb_used:ratio"
THERMAL_THROTTLE = "host_gpu:dcgm_thermal_throttle:ratio_rate5m"
POWER_THROTTLE = "host_gpu:dcgm_power_throttle:ratio_rate5m"
HOST_GPUS = "host:dcgm_gpus:count"
HOST_UTILIZATION = "host:dcgm_gpu_utilization:avg"
HOST_POWER = "host:dcgm_power_usage_watts:sum"
HOST_ENERGY_RATE = "host:dcgm_energy_joules:rate5m"
FLEET_GPUS = "fleet:dcgm_gpus:count"
FLEET_UTILIZATION = "fleet:dcgm_gpu_utilization:avg"
FLEET_POWER = "fleet:dcgm_power_usage_watts:sum"
FLEET_HOTTEST = "fleet:dcgm_gpu_temp:max"
FLEET_XID_ERRORS = "fleet:dcgm_xid_errors:sum"

ENERGY_COUNTER = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"  # millijoules since the driver loaded
# DCGM reports unsupported fields as a huge blank sentinel (9223372036854775794): keep plausible values only.
PLAUSIBLE = "< 1000"


def gpu_labels(host: str) -> tuple[str, str]:
    """The labels that name one GPU: its host (setting `labels.host`) and index."""
    return host, "gpu"


def identity_labels(host: str) -> tuple[str, ...]:
    """One GPU with its UUID and model name, as a table row shows it."""
    return (*gpu_labels(host), "UUID", "modelName")


# ------------------------------------------------------------------ per GPU
def plausible(scope: Promql, field: str) -> str:
    """A field that a card without the sensor or limit reports as DCGM's blank value, left out."""
    return f"{scope.sel(field)} {PLAUSIBLE}"


def per_gpu(scope: Promql, operator: str, field: str, labels: tuple[str, ...]) -> str:
    """One series per GPU with just `labels`, so the queries of a merged table join row by row."""
    return aggregate(operator, scope.sel(field), labels)


def per_second(scope: Promql, counter: str) -> str:
    return scope.rate(counter, RATE)


def power_from_energy(scope: Promql) -> str:
    """Watts from the energy counter (mJ/s / 1000)."""
    return f"{per_second(scope, ENERGY_COUNTER)} / 1000"


def energy_used_kwh(scope: Promql) -> str:
    """kWh the selected GPUs used over the dashboard's time range (mJ / 3.6e9)."""
    return f"{aggregate('sum', scope.increase(ENERGY_COUNTER, '$__range'))} / 3.6e9"


def clock_hz(scope: Promql, field: str) -> str:
    """A clock field (MHz) in Hz, so Grafana scales it."""
    return f"{scope.sel(field)} * 1e6"


# ------------------------------------------------------------------ fleet
def hosts_with_gpus() -> str:
    return aggregate("count", HOST_GPUS)


def smallest_margin() -> str:
    return aggregate("min", TEMP_MARGIN)


def worst_per_host(operator: str, series: str, host: str) -> str:
    """The worst GPU of each host: `min` of a margin, `max` of a ratio."""
    return aggregate(operator, series, (host,))


def gpus_with_uncorrectable_ecc(host: str) -> str:
    """GPUs whose volatile double-bit ECC count is above zero (0, not no data, when none)."""
    worst = aggregate("max", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", gpu_labels(host))
    return f"{aggregate('count', f'{worst} > 0')} or vector(0)"


def gpus_with_row_remap_trouble(host: str) -> str:
    """GPUs whose row remapping failed or waits for a reset (0 when none)."""
    trouble = "DCGM_FI_DEV_ROW_REMAP_FAILURE > 0 or DCGM_FI_DEV_ROW_REMAP_PENDING > 0"
    return f"{aggregate('count', aggregate('max', trouble, gpu_labels(host)))} or vector(0)"
