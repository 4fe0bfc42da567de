"""How Grafana shows a value: the field's config (the panel's defaults with the overrides that match it),
its unit (`format_value`) and its threshold colour, in Grafana's dark theme."""

from __future__ import annotations

import math
import re
from typing import Any

from matplotlib.colors import is_color_like

# Grafana's dark theme.
BACKGROUND = "#111217"
PANEL = "#181b1f"
BORDER = "#2c3235"
TEXT = "#ccccdc"
MUTED = "#8e8e9e"
NAMED_COLORS = {
    "green": "#73BF69", "red": "#F2495C", "orange": "#FF9830", "yellow": "#FADE2A", "blue": "#5794F2",
    "purple": "#B877D9", "dark-red": "#C4162A", "dark-orange": "#FA6400", "dark-green": "#37872D",
    "text": TEXT, "transparent": PANEL,
}

_COUNT = ("", "K", "M", "B", "T")
# Unit id -> (step between prefixes, symbols from the unit itself upwards).
_SCALED_UNITS = {
    "short": (1000, ("", " K", " Mil", " Bil", " Tri")),
    "watt": (1000, (" W", " kW", " MW", " GW")),
    "hertz": (1000, (" Hz", " kHz", " MHz", " GHz", " THz")),
    "Bps": (1000, (" B/s", " kB/s", " MB/s", " GB/s", " TB/s")),
    "decbytes": (1000, (" B", " kB", " MB", " GB", " TB")),
    "bytes": (1024, (" B", " KiB", " MiB", " GiB", " TiB")),
    "mbytes": (1024, (" MiB", " GiB", " TiB", " PiB")),
    "reqps": (1000, tuple(f"{prefix} req/s" for prefix in _COUNT)),
    "ops": (1000, tuple(f"{prefix} ops/s" for prefix in _COUNT)),
}
_FIXED_UNITS = {"percent": "%", "celsius": " °C", "kwatth": " kWh", "none": ""}
_DURATIONS = ((86400, " day"), (3600, " h"), (60, " min"), (1, " s"), (1e-3, " ms"), (1e-6, " µs"), (1e-9, " ns"))
_SECONDS_PER = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}


def _number(value: float) -> str:
    """A value with about three significant digits and no exponent for everyday magnitudes."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    decimals = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 1 else None
    text = f"{value:.3g}" if decimals is None else f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def _scaled(value: float, step: int, symbols: tuple[str, ...]) -> str:
    power = 0
    while power < len(symbols) - 1 and abs(value) >= step ** (power + 1):
        power += 1
    return f"{_number(value / step ** power)}{symbols[power]}"


def format_value(value: float | None, unit: str | None) -> str:
    """A value as Grafana shows it in `unit` (fieldConfig unit ids; `count:<suffix>` is a custom count)."""
    if value is None or math.isnan(value):
        return "-"
    unit = unit or "short"
    if unit == "percentunit":
        return f"{_number(value * 100)}%"
    if unit in _FIXED_UNITS:
        return f"{_number(value)}{_FIXED_UNITS[unit]}"
    if unit in _SECONDS_PER:
        seconds = value * _SECONDS_PER[unit]
        divisor, symbol = next(((d, s) for d, s in _DURATIONS if abs(seconds) >= d), (1, " s"))
        return f"{_number(seconds / divisor)}{symbol}"
    if unit == "currencyUSD":
        return ("-" if value < 0 else "") + "$" + _scaled(abs(value), 1000, _COUNT)
    if unit.startswith("count:"):
        suffix = unit.removeprefix("count:")
        return _scaled(value, 1000, tuple(f"{prefix} {suffix}" for prefix in _COUNT))
    step, symbols = _SCALED_UNITS.get(unit, (1000, tuple(f"{s} {unit}" for s in _SCALED_UNITS["short"][1])))
    return _scaled(value, step, symbols)


def threshold_color(value: float, thresholds: dict[str, Any] | None) -> str:
    """The colour of the last absolute threshold step `value` reaches (the base step has value null)."""
    color = "text"
    for step in (thresholds or {}).get("steps", []):
        if step.get("value") is None or value >= step["value"]:
            color = step.get("color", color)
    return color_of(color)


def color_of(name: str) -> str:
    """A Grafana colour name (or any matplotlib colour) as a matplotlib colour."""
    if name in NAMED_COLORS:
        return NAMED_COLORS[name]
    return name if is_color_like(name) else TEXT


def field_config(panel: dict[str, Any], name: str) -> dict[str, Any]:
    """The field config of the field (series or column) called `name`: the defaults with the overrides
    that match it (byName, byRegexp) applied, dotted property ids such as `custom.lineStyle` nested."""
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    config = {**defaults, "custom": dict(defaults.get("custom", {}))}
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        if not _matches(override.get("matcher", {}), name):
            continue
        for prop in override.get("properties", []):
            *parents, key = prop["id"].split(".")
            target = config
            for parent in parents:
                target = target.setdefault(parent, {})
            target[key] = prop.get("value")
    return config


def _matches(matcher: dict[str, Any], name: str) -> bool:
    """Whether an override's field matcher selects the field `name` (other matchers select nothing here)."""
    pattern = str(matcher.get("options", ""))
    if matcher.get("id") == "byName":
        return name == pattern
    return matcher.get("id") == "byRegexp" and re.search(pattern, name) is not None

