"""Drawing a dashboard with matplotlib: Grafana's 24-column grid in inches, a panel frame per gridPos, and a
renderer per panel kind (time series, heatmap, stat, table, row), in Grafana's dark theme."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

from llmobs.dashboards.preview.fetch import PanelData, Series, table_frame
from llmobs.dashboards.preview.units import (
    BACKGROUND,
    BORDER,
    MUTED,
    NAMED_COLORS,
    PANEL,
    TEXT,
    color_of,
    field_config,
    format_value,
    threshold_color,
)

GRID_COLUMNS = 24
FIGURE_WIDTH_IN = 20.0
GRID_UNIT_HEIGHT_IN = 0.28      # a little flatter than Grafana's 30 px row next to an 80 px column
HEADER_IN = 0.55
GAP_IN = 0.06
TITLE_IN = 0.26
DPI = 80
MAX_LEGEND_SERIES = 8
# Font sizes (points) and what they take on the figure (inches): an average character, a line.
TITLE_FONT, LEGEND_FONT, TICK_FONT, TABLE_FONT = 10, 7, 7, 8
TITLE_CHAR_IN, LEGEND_CHAR_IN, MUTED_CHAR_IN, TABLE_CHAR_IN, TABLE_HEADER_CHAR_IN = 0.085, 0.052, 0.06, 0.07, 0.085
LEGEND_HANDLE_IN, LEGEND_ROW_IN, TABLE_ROW_IN = 0.35, 0.16, 0.19
Y_TICKS_IN, X_TICKS_IN = 0.62, 0.2
TIME_TICK_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
# Grafana's classic palette, in its order.
PALETTE = ("#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0",
           "#508642", "#CCA300", "#447EBC", "#C15C17", "#890F02", "#0A437C", "#6D1F62", "#584477")


# ------------------------------------------------------------------------------------------------ layout
@dataclass(frozen=True)
class Box:
    """A box in inches from the figure's top-left corner (matplotlib places axes in figure fractions)."""

    left: float
    top: float
    width: float
    height: float

    def inner(self, left: float, top: float, right: float, bottom: float) -> Box:
        return Box(self.left + left, self.top + top, self.width - left - right, self.height - top - bottom)


def panel_box(grid_pos: dict[str, int]) -> Box:
    """Where a gridPos (24 columns, rows of GRID_UNIT_HEIGHT_IN) sits below the header, a gap all round."""
    column_in = FIGURE_WIDTH_IN / GRID_COLUMNS
    return Box(grid_pos["x"] * column_in + GAP_IN, HEADER_IN + grid_pos["y"] * GRID_UNIT_HEIGHT_IN + GAP_IN,
               grid_pos["w"] * column_in - 2 * GAP_IN, grid_pos["h"] * GRID_UNIT_HEIGHT_IN - 2 * GAP_IN)


def legend_columns(labels: list[str], width_in: float) -> int:
    """How many legend entries fit side by side in `width_in` at the legend's font size."""
    widest = max((len(label) for label in labels), default=0) * LEGEND_CHAR_IN + LEGEND_HANDLE_IN
    return max(1, min(len(labels), int(width_in // widest)))


def time_tick_step(range_s: float, width_in: float) -> int:
    """A round tick spacing in seconds that puts at most one time label per inch."""
    most = max(2, int(width_in))
    return next((step for step in TIME_TICK_STEPS if range_s / step <= most), TIME_TICK_STEPS[-1])


def _clip(text: str, width_in: float, char_in: float) -> str:
    fits = max(4, int(width_in / char_in))
    return text if len(text) <= fits else text[: fits - 1] + "…"


def _last(values: tuple[float, ...]) -> float:
    return next((value for value in reversed(values) if not math.isnan(value)), math.nan)


# ------------------------------------------------------------------------------------------------ drawing
class Drawing:
    """One figure in Grafana's dark theme, with axes placed by Box."""

    def __init__(self, grid_height: int) -> None:
        self.height_in = HEADER_IN + grid_height * GRID_UNIT_HEIGHT_IN + GAP_IN
        self.figure = Figure(figsize=(FIGURE_WIDTH_IN, self.height_in), dpi=DPI, facecolor=BACKGROUND)

    def axes(self, box: Box, **kwargs: Any) -> Axes:
        return self.figure.add_axes((box.left / FIGURE_WIDTH_IN, 1 - (box.top + box.height) / self.height_in,
                                     box.width / FIGURE_WIDTH_IN, box.height / self.height_in), **kwargs)

    def text(self, left_in: float, top_in: float, text: str, **kwargs: Any) -> None:
        self.figure.text(left_in / FIGURE_WIDTH_IN, 1 - top_in / self.height_in, text,
                         **{"color": TEXT, "parse_math": False, **kwargs})

    def frame(self, box: Box, title: str, note: str = "") -> Box:
        """The panel's background, border and title (and a muted note at the right); returns the content box."""
        frame = self.axes(box, facecolor=PANEL, xticks=[], yticks=[])
        for spine in frame.spines.values():
            spine.set_color(BORDER)
        title_width = box.width - 0.2 - len(note) * MUTED_CHAR_IN
        self.text(box.left + 0.1, box.top + TITLE_IN / 2, _clip(title, title_width, TITLE_CHAR_IN),
                  fontsize=TITLE_FONT, fontweight="bold", va="center")
        if note:
            self.text(box.left + box.width - 0.1, box.top + TITLE_IN / 2, note, fontsize=LEGEND_FONT,
                      color=MUTED, va="center", ha="right")
        return box.inner(0.1, TITLE_IN, 0.1, 0.05)

    def message(self, box: Box, text: str, color: str = MUTED) -> None:
        self.text(box.left + box.width / 2, box.top + box.height / 2, _clip(text, box.width, MUTED_CHAR_IN),
                  fontsize=TITLE_FONT + 1, color=color, ha="center", va="center")


def _style(axes: Axes, unit: str | None) -> None:
    axes.set_facecolor(PANEL)
    axes.tick_params(colors=MUTED, labelsize=TICK_FONT, length=0, pad=2)
    axes.grid(True, color=BORDER, linewidth=0.6)
    axes.set_axisbelow(True)
    for spine in axes.spines.values():
        spine.set_visible(False)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: format_value(value, unit)))
    axes.yaxis.set_major_locator(MaxNLocator(nbins=4))


def _time_axis(axes: Axes, times: tuple[float, ...], width_in: float) -> None:
    """Round UTC times along the x axis, none at the very edges (where they would run into the y labels)."""
    start, end = times[0], times[-1]
    edge = (end - start) * 0.04
    ticks = MultipleLocator(time_tick_step(end - start, width_in)).tick_values(start, end)
    axes.set_xticks([tick for tick in ticks if start + edge < tick < end - edge])
    axes.set_xlim(start, end)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: time.strftime("%H:%M", time.gmtime(value))))


def _legend_label(panel: dict[str, Any], one: Series, unit: str | None) -> str:
    """The series name followed by the legend's calculations, as Grafana's table legend lists them."""
    calcs = panel.get("options", {}).get("legend", {}).get("calcs", [])
    present = [value for value in one.values if not math.isnan(value)]
    shown = {"lastNotNull": ("last", _last(one.values)), "last": ("last", one.values[-1]),
             "max": ("max", max(present, default=math.nan)), "min": ("min", min(present, default=math.nan)),
             "mean": ("mean", sum(present) / len(present) if present else math.nan)}
    return "  ".join([one.name or "value", *(f"{shown[calc][0]} {format_value(shown[calc][1], unit)}"
                                             for calc in calcs if calc in shown)])


def value_bounds(values: np.ndarray, minimum: float | None, maximum: float | None) -> tuple[float, float]:
    """The y range of a linear axis: the data's with a 5 % margin, never below zero for data that is not,
    widened when the data is flat (all zeros get 0 to 1, not ±0.05), the panel's min and max where set."""
    present = values[~np.isnan(values)]
    low, high = (float(present.min()), float(present.max())) if present.size else (0.0, 1.0)
    margin = (high - low) * 0.05 or abs(high) * 0.1 or 1.0
    low, high = (low - margin if low - margin >= 0 or low < 0 else 0.0), high + margin
    if minimum is not None:
        low, high = minimum, max(high, minimum + margin)
    return low, high if maximum is None else maximum


def _plot_series(axes: Axes, panel: dict[str, Any], data: PanelData) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Draw every series as lines or bars (stacked when the panel stacks); returns every value drawn, and
    (colour, opacity, values, the stack below or None) of the line series that the panel fills."""
    custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
    stacked = custom.get("stacking", {}).get("mode") == "normal"
    times = np.array(data.times)
    below = np.zeros(len(times))
    fills = []
    drawn = []
    for index, one in enumerate(data.series):
        config = field_config(panel, one.name)["custom"]
        values = np.array(one.values)
        lower = below
        if stacked:
            values, below = below + values, below + np.nan_to_num(values)
        color = PALETTE[index % len(PALETTE)]
        drawn.append(values)
        if config.get("drawStyle") == "bars":
            axes.bar(times, values, width=(times[1] - times[0]) * 0.8 if len(times) > 1 else 1, color=color,
                     alpha=config.get("fillOpacity", 80) / 100, linewidth=0)
            continue
        dashed = config.get("lineStyle", {}).get("fill") == "dash"
        axes.plot(times, values, color=color, linewidth=max(1.0, config.get("lineWidth", 1)),
                  linestyle="--" if dashed else "-")
        if config.get("fillOpacity"):
            # Overlapping fills of many series would hide their lines: thin them out beyond three.
            opacity = config["fillOpacity"] / 100 * min(1.0, 3 / len(data.series))
            fills.append((color, opacity, values, lower if stacked else None))
    return np.array(drawn), fills


def draw_timeseries(drawing: Drawing, box: Box, data: PanelData) -> None:
    """Lines (or bars, or stacked areas) over the range in the panel's unit, its bounds and log scale, the
    threshold steps as dashed lines when the panel draws them, a legend for a few series."""
    panel = data.panel
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    custom = defaults.get("custom", {})
    unit = defaults.get("unit")
    labels = [_legend_label(panel, one, unit) for one in data.series]
    columns = legend_columns(labels, box.width - 0.2)
    legend_in = math.ceil(len(labels) / columns) * LEGEND_ROW_IN + 0.04
    show_legend = len(labels) <= MAX_LEGEND_SERIES and legend_in <= 0.4 * box.height
    content = drawing.frame(box, panel.get("title", ""), "" if show_legend else f"{len(labels)} series")
    plot = content.inner(Y_TICKS_IN, 0, 0, X_TICKS_IN + (legend_in if show_legend else 0))
    axes = drawing.axes(plot)
    _style(axes, unit)
    drawn, fills = _plot_series(axes, panel, data)
    if custom.get("scaleDistribution", {}).get("type") == "log":
        axes.set_yscale("log", base=custom["scaleDistribution"].get("log", 2))
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: format_value(value, unit)))
    else:
        axes.set_ylim(value_bounds(drawn, defaults.get("min"), defaults.get("max")))
    bottom, top = axes.get_ylim()
    for color, opacity, values, lower in fills:
        axes.fill_between(data.times, bottom if lower is None else lower, values, color=color, alpha=opacity,
                          linewidth=0)
    if custom.get("thresholdsStyle", {}).get("mode") in ("dashed", "line", "line+area", "dashed+area"):
        for step in defaults.get("thresholds", {}).get("steps", []):
            if step.get("value") is not None and bottom <= step["value"] <= top:
                axes.axhline(step["value"], color=color_of(step["color"]), linestyle="--", linewidth=1)
    axes.set_ylim(bottom, top)
    _time_axis(axes, data.times, plot.width)
    if show_legend:
        handles = [Line2D([], [], color=PALETTE[i % len(PALETTE)], linewidth=2) for i in range(len(labels))]
        width = (content.width / columns) - LEGEND_HANDLE_IN
        drawing.figure.legend(
            # A legend has no parse_math: escape the $ of dollar amounts, or two of them make mathtext.
            handles, [_clip(label, width, LEGEND_CHAR_IN).replace("$", r"\$") for label in labels], ncols=columns,
            loc="upper left", bbox_to_anchor=(content.left / FIGURE_WIDTH_IN,
                                              1 - (plot.top + plot.height + X_TICKS_IN) / drawing.height_in),
            frameon=False, fontsize=LEGEND_FONT, labelcolor=TEXT, handlelength=1.2, handletextpad=0.4,
            columnspacing=1.0, borderaxespad=0, borderpad=0, labelspacing=0.25)


def draw_heatmap(drawing: Drawing, box: Box, data: PanelData) -> None:
    """Buckets (`le`) up, time along, each cell the rate in that bucket alone (Grafana's heatmap format
    takes the cumulative buckets apart), empty cells left blank."""
    panel = data.panel
    options = panel.get("options", {})
    content = drawing.frame(box, panel.get("title", ""))
    plot = content.inner(Y_TICKS_IN, 0, 0, X_TICKS_IN)
    axes = drawing.axes(plot)
    unit = options.get("yAxis", {}).get("unit") or panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    _style(axes, unit)
    axes.grid(False)
    buckets = sorted(data.series, key=lambda one: float(one.labels.get("le", one.name)))
    cumulative = np.nan_to_num(np.array([one.values for one in buckets]))
    counts = np.diff(cumulative, axis=0, prepend=0)
    empty_below = options.get("filterValues", {}).get("le", 1e-9)
    times = np.array(data.times)
    step = times[1] - times[0] if len(times) > 1 else 1
    scheme = options.get("color", {}).get("scheme", "Oranges")
    axes.pcolormesh(np.append(times - step / 2, times[-1] + step / 2), np.arange(len(buckets) + 1),
                    np.ma.masked_less_equal(counts, empty_below), cmap=_colormap(scheme), shading="flat")
    shown = max(1, math.ceil(len(buckets) / max(2, int(plot.height / 0.22))))
    axes.set_yticks([i + 1 for i in range(0, len(buckets), shown)])
    axes.yaxis.set_major_formatter(FuncFormatter(
        lambda value, _pos: _bucket_label(buckets[int(value) - 1], unit) if 0 < value <= len(buckets) else ""))
    _time_axis(axes, data.times, plot.width)
    axes.set_xlim(times[0] - step / 2, times[-1] + step / 2)


def _bucket_label(bucket: Series, unit: str | None) -> str:
    upper = float(bucket.labels.get("le", bucket.name))
    return "+Inf" if math.isinf(upper) else format_value(upper, unit)


def _colormap(scheme: str) -> str:
    """Grafana's d3 scheme as the matplotlib colormap of the same name, darkest for the fewest on the
    dark theme; a neutral one where matplotlib has no such name."""
    from matplotlib import colormaps

    return f"{scheme}_r" if scheme in colormaps else "inferno"


def draw_stat(drawing: Drawing, box: Box, data: PanelData) -> None:
    """The last value of each series, big and coloured by the thresholds; the series names above the
    numbers when there are several, as Grafana lays them out."""
    panel = data.panel
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    content = drawing.frame(box, panel.get("title", ""))
    count = len(data.series)
    columns = min(count, max(1, round(math.sqrt(count * content.width / content.height / 2))))
    rows = math.ceil(count / columns)
    cell_width, cell_height = content.width / columns, content.height / rows
    for index, one in enumerate(data.series):
        left = content.left + (index % columns) * cell_width
        top = content.top + (index // columns) * cell_height
        value = _last(one.values)
        text = format_value(value, defaults.get("unit"))
        name_in = min(0.2, cell_height * 0.3) if count > 1 else 0
        size = min((cell_height - name_in) * 72 * 0.62, cell_width * 72 / (0.62 * max(len(text), 2)), 40)
        if name_in:
            drawing.text(left + cell_width / 2, top + name_in / 2, _clip(one.name, cell_width, MUTED_CHAR_IN),
                         fontsize=LEGEND_FONT, color=MUTED, ha="center", va="center")
        color = TEXT if math.isnan(value) else threshold_color(value, defaults.get("thresholds"))
        drawing.text(left + cell_width / 2, top + name_in + (cell_height - name_in) / 2, text, fontsize=size,
                     fontweight="bold", color=color, ha="center", va="center")


def draw_table(drawing: Drawing, box: Box, data: PanelData) -> None:
    """The header and the first rows that fit, values in their column's unit and coloured where the
    column's cell option colours by thresholds; a last line says how many rows are left out."""
    panel = data.panel
    columns, rows = table_frame(panel, data.series)
    content = drawing.frame(box, panel.get("title", ""), f"{len(rows)} rows")
    fitting = max(1, int(content.height / TABLE_ROW_IN) - 1)
    shown = rows if len(rows) <= fitting else rows[: fitting - 1]
    cells = [[_cell(panel, column, row.get(column)) for column in columns] for row in shown]
    longest = [max((len(row[i][0]) for row in cells), default=0) for i in range(len(columns))]
    widths = [max(len(column), cell) + 2 for column, cell in zip(columns, longest, strict=True)]
    if sum(widths) * TABLE_CHAR_IN > content.width:  # too narrow for whole headers: the values come first
        widths = [max(min(len(column), 6), cell) + 2 for column, cell in zip(columns, longest, strict=True)]
    scale = content.width / max(1, sum(widths))
    left = content.left
    for i, column in enumerate(columns):
        width = widths[i] * scale
        drawing.text(left, content.top + TABLE_ROW_IN / 2, _clip(column, width, TABLE_HEADER_CHAR_IN),
                     fontsize=TABLE_FONT, color=MUTED, fontweight="bold", va="center")
        for r, row in enumerate(cells):
            text, color = row[i]
            drawing.text(left, content.top + (r + 1.5) * TABLE_ROW_IN, _clip(text, width, TABLE_CHAR_IN),
                         fontsize=TABLE_FONT, color=color, va="center")
        left += width
    if len(shown) < len(rows):
        drawing.text(content.left, content.top + (len(shown) + 1.5) * TABLE_ROW_IN,
                     f"… {len(rows) - len(shown)} more rows", fontsize=TABLE_FONT, color=MUTED, va="center")


def _cell(panel: dict[str, Any], column: str, value: Any) -> tuple[str, str]:
    if not isinstance(value, float):
        return ("" if value is None else str(value)), TEXT
    config = field_config(panel, column)
    colored = str(config["custom"].get("cellOptions", {}).get("type", "")).startswith("color")
    color = threshold_color(value, config.get("thresholds")) if colored and not math.isnan(value) else TEXT
    return format_value(value, config.get("unit")), color


def draw_row(drawing: Drawing, panel: dict[str, Any]) -> None:
    box = panel_box(panel["gridPos"])
    folded = len(panel.get("panels", []))
    title = panel.get("title", "") + (f"  (collapsed: {folded} panels)" if panel.get("collapsed") else "")
    drawing.text(box.left, box.top + box.height / 2, title, fontsize=TITLE_FONT + 3, fontweight="bold", va="center")


# Gauges and bar gauges show the same value and colour as a stat; the preview leaves out the dial.
DRAWERS: dict[str, Callable[[Drawing, Box, PanelData], None]] = {
    "timeseries": draw_timeseries, "heatmap": draw_heatmap, "stat": draw_stat, "gauge": draw_stat,
    "bargauge": draw_stat, "table": draw_table,
}


def draw_panel(drawing: Drawing, panel: dict[str, Any], data: PanelData) -> None:
    """A top-level panel at its gridPos: its renderer, or a message for a query error, a kind the preview
    does not draw, or no data."""
    kind = panel.get("type", "?")
    if kind == "row":
        draw_row(drawing, panel)
        return
    box = panel_box(panel["gridPos"])
    if data.errors:
        drawing.message(drawing.frame(box, panel.get("title", "")), f"Query error: {data.errors[0]}",
                        NAMED_COLORS["red"])
    elif kind not in DRAWERS:
        drawing.message(drawing.frame(box, panel.get("title", "")), f"{kind} panels are not previewed")
    elif not data.series:
        drawing.message(drawing.frame(box, panel.get("title", "")), "No data")
    else:
        DRAWERS[kind](drawing, box, data)


def draw_header(drawing: Drawing, title: str, range_s: float, end: float) -> None:
    """The dashboard's title, and what the picture is: which range, and not a Grafana screenshot."""
    drawing.text(GAP_IN, HEADER_IN * 0.38, title, fontsize=18, fontweight="bold", va="center")
    drawing.text(GAP_IN, HEADER_IN * 0.8, (
        f"last {_duration_text(range_s)} until {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(end))}, every "
        "variable at All  ·  a preview drawn by `llmobs dashboards preview` from Prometheus' answers to the "
        "panels' own queries, not a Grafana screenshot"), fontsize=LEGEND_FONT + 2, color=MUTED, va="center")


def save_png(drawing: Drawing, out: Path) -> None:
    """Write the figure as a 256-colour PNG: a dashboard has few colours, and the palette makes the file a
    third of the size without a visible change (Pillow comes with matplotlib)."""
    from PIL import Image

    canvas = FigureCanvasAgg(drawing.figure)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    out.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)


def _duration_text(seconds: float) -> str:
    for divisor, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= divisor and seconds % divisor == 0:
            return f"{seconds // divisor:g}{unit}"
    return f"{seconds:g}s"
