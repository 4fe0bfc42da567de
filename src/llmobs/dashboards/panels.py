"""Small, opinionated layer over grafana-foundation-sdk: every panel gets a title, a unit, a description,
the `${datasource}` variable, ref ids and (where an alert exists) thresholds from the settings.

Dashboard modules describe panels with `Target`s and the factories below (keyword-only options, which
every kind shares through `PanelOptions`); `Board` lays them out, numbers them and serialises the result
through the SDK, so the JSON always follows the Grafana schema the SDK release targets (grafana/grafana:11.6.0).
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common, units
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.heatmap import HeatmapColorMode
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE_VARIABLE = "datasource"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${" + DATASOURCE_VARIABLE + "}")
TAG = "llmobs"

# Grafana units the SDK has no constant for: `count:` scales with K/M/B and appends the symbol.
TOKENS = "count:tok"
TOKENS_PER_SECOND = "count:tok/s"
TOKENS_PER_JOULE = "count:tok/J"
PER_SECOND = "count:/s"
# Threshold colours.
GOOD, WARN, BAD = "green", "orange", "red"


@dataclass(frozen=True)
class Target:
    """One PromQL query of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False
    format: Literal["time_series", "table", "heatmap"] = "time_series"


@dataclass(frozen=True)
class Steps:
    """Threshold steps: the colour below the first value, then (value, colour) pairs in ascending order."""

    base: str
    steps: tuple[tuple[float, str], ...] = ()

    @classmethod
    def rising(cls, warning: float | None, critical: float | None) -> Steps:
        """Higher is worse: green, orange from `warning`, red from `critical`."""
        pairs = [(v, c) for v, c in ((warning, WARN), (critical, BAD)) if v is not None]
        return cls(GOOD, tuple(pairs))

    @classmethod
    def falling(cls, warning: float | None, critical: float | None) -> Steps:
        """Lower is worse: red below `critical`, orange below `warning`, green above."""
        pairs = [(v, c) for v, c in ((critical, WARN), (warning, GOOD)) if v is not None]
        return cls(BAD if critical is not None else WARN, tuple(pairs))

    def build(self) -> dash.ThresholdsConfig:
        steps = [model.Threshold(value=None, color=self.base)]
        steps += [model.Threshold(value=value, color=color) for value, color in self.steps]
        return dash.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps)


NEUTRAL = Steps(GOOD)


@dataclass(frozen=True)
class Link:
    """A data link from a series (or a table row) to another dashboard, its labels becoming variables."""

    title: str
    uid: str
    variables: dict[str, str] = field(default_factory=dict)

    def build(self, table: bool = False) -> dash.DashboardLink:
        # Graphs expose a series' labels as __field.labels; tables expose the row's cells as __data.fields.
        source = "__data.fields" if table else "__field.labels"
        params = [f"var-{name}=${{{source}.{label}}}" for name, label in self.variables.items()]
        params += ["${datasource:queryparam}", "${__url_time_range}"]
        title = self.title.replace("__field.labels", source)
        return dash.DashboardLink(title).url(f"/d/{self.uid}/?" + "&".join(params))


def _targets(builder: Any, targets: Sequence[Target]) -> Any:
    for ref, target in zip(string.ascii_uppercase, targets, strict=False):
        query = (
            prometheus.Dataquery().expr(target.expr).ref_id(ref).datasource(DATASOURCE)
            .legend_format(target.legend or "__auto")
        )
        query = query.instant() if target.instant else query.range()
        if target.format != "time_series":
            query = query.format(PromQueryFormat(target.format))
        builder = builder.with_target(query)
    return builder


@dataclass(frozen=True, kw_only=True)
class PanelOptions:
    """What every kind of panel has: title, description, unit and queries, thresholds and data links, its
    size on the grid and the value bounds of its field. The factories below fill it from their keywords."""

    title: str
    description: str
    unit: str
    targets: Sequence[Target]
    thresholds: Steps = NEUTRAL
    links: Sequence[Link] = ()
    width: int = 12
    height: int = 8
    min_value: float | None = None
    max_value: float | None = None
    decimals: float | None = None


def _common(builder: Any, options: PanelOptions) -> Any:
    if len(options.targets) > len(string.ascii_uppercase):
        raise ValueError(f"panel {options.title!r}: at most {len(string.ascii_uppercase)} queries")
    builder = (
        builder.title(options.title).description(options.description).unit(options.unit).datasource(DATASOURCE)
        .thresholds(options.thresholds.build()).span(options.width).height(options.height)
    )
    if options.links:
        builder = builder.data_links([link.build(table=isinstance(builder, table.Panel)) for link in options.links])
    if options.min_value is not None:
        builder = builder.min(options.min_value)
    if options.max_value is not None:
        builder = builder.max(options.max_value)
    if options.decimals is not None:
        builder = builder.decimals(options.decimals)
    return _targets(builder, options.targets)


def timeseries_panel(
    title: str, description: str, unit: str, targets: Sequence[Target], *,
    thresholds: Steps = NEUTRAL, links: Sequence[Link] = (), width: int = 12, height: int = 8,
    min_value: float | None = None, max_value: float | None = None, decimals: float | None = None,
    stacked: bool = False, bars: bool = False, dashed: str | None = None, log_scale: bool = False,
) -> timeseries.Panel:
    """A graph. Thresholds other than the base colour are drawn as dashed lines; series whose name
    matches the regex `dashed` (limits such as a slowdown temperature) are drawn dashed too."""
    builder = _common(timeseries.Panel(), PanelOptions(
        title=title, description=description, unit=unit, targets=targets, thresholds=thresholds, links=links,
        width=width, height=height, min_value=min_value, max_value=max_value, decimals=decimals))
    builder = (
        builder.line_width(1).fill_opacity(10).show_points(common.VisibilityMode.NEVER)
        .legend(common_builders.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
                .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs(["lastNotNull", "max"]))
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                 .sort(common.SortOrder.DESCENDING))
    )
    if thresholds.steps:
        builder = builder.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED))
    if stacked:
        builder = builder.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if bars:
        builder = builder.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    if log_scale:
        builder = builder.scale_distribution(
            common_builders.ScaleDistributionConfig().type(common.ScaleDistribution.LOG).log(2))
    if dashed:
        builder = builder.override_by_regexp(dashed, [
            model.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
            model.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
        ])
    return builder


def stat_panel(
    title: str, description: str, unit: str, targets: Sequence[Target], *,
    thresholds: Steps = NEUTRAL, links: Sequence[Link] = (), width: int = 4, height: int = 4,
    min_value: float | None = None, max_value: float | None = None, decimals: float | None = None,
) -> stat.Panel:
    """A single big number (per series, its last value) coloured by its thresholds."""
    builder = _common(stat.Panel(), PanelOptions(
        title=title, description=description, unit=unit, targets=targets, thresholds=thresholds, links=links,
        width=width, height=height, min_value=min_value, max_value=max_value, decimals=decimals))
    return (
        builder.color_mode(common.BigValueColorMode.VALUE).graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def heatmap_panel(
    title: str, description: str, unit: str, target: Target, *, width: int = 12, height: int = 8,
) -> heatmap.Panel:
    """A heatmap of histogram buckets (the query returns per-`le` rates; Grafana turns them into bands)."""
    heat_target = Target(target.expr, legend="{{le}}", format="heatmap")
    builder = _common(heatmap.Panel(), PanelOptions(
        title=title, description=description, unit=unit, targets=[heat_target], width=width, height=height))
    return (
        builder.calculate(False)
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE))
        .y_axis(heatmap.YAxisConfig().unit(unit))
        .color(heatmap.HeatmapColorOptions().mode(HeatmapColorMode.SCHEME).scheme("Oranges").steps(64))
        .cell_values(heatmap.CellValues().unit(PER_SECOND))
        .hide_y_histogram()
    )


@dataclass(frozen=True)
class Column:
    """A value column of a merged table: its query, header, unit and thresholds (coloured cell)."""

    expr: str
    header: str
    unit: str
    thresholds: Steps = NEUTRAL


def table_panel(
    title: str, description: str, unit: str, targets: Sequence[Target], *,
    thresholds: Steps = NEUTRAL, links: Sequence[Link] = (), width: int = 24, height: int = 8,
    hide: Sequence[str] = ("Time", "__name__"),
) -> table.Panel:
    """Instant queries shown as rows: one per series, its labels as columns."""
    instant = [Target(t.expr, t.legend, instant=True, format="table") for t in targets]
    builder = _common(table.Panel(), PanelOptions(
        title=title, description=description, unit=unit, targets=instant, thresholds=thresholds, links=links,
        width=width, height=height))
    return builder.with_transformation(model.DataTransformerConfig(id_val="organize", options={
        "excludeByName": dict.fromkeys(hide, True),
    })).cell_height(common.TableCellHeight.SM).filterable(True)


def merged_table_panel(
    title: str, description: str, columns: Sequence[Column], *, links: Sequence[Link] = (),
    width: int = 24, height: int = 8, hide: Sequence[str] = ("Time",),
) -> table.Panel:
    """One row per label set, one coloured column per query (joined on the labels the queries share)."""
    targets = [Target(c.expr, instant=True, format="table") for c in columns]
    builder = _common(table.Panel(), PanelOptions(
        title=title, description=description, unit=units.Short, targets=targets, links=links, width=width,
        height=height))
    renames = {f"Value #{ref}": c.header for ref, c in zip(string.ascii_uppercase, columns, strict=False)}
    builder = (
        builder.with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(model.DataTransformerConfig(id_val="organize", options={
            "excludeByName": dict.fromkeys(hide, True), "renameByName": renames}))
        .cell_height(common.TableCellHeight.SM).filterable(True)
    )
    for column in columns:
        properties = [model.DynamicConfigValue(id_val="unit", value=column.unit)]
        if column.thresholds.steps:
            properties += [
                model.DynamicConfigValue(id_val="thresholds", value=column.thresholds.build().build()),
                model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
            ]
        builder = builder.override_by_name(column.header, properties)
    return builder


class Board:
    """A dashboard under construction: variables, rows and panels in order, ids assigned on the way."""

    def __init__(self, uid: str, title: str, description: str, variables: Sequence[Any], *,
                 time_from: str = "now-3h", refresh: str = "30s"):
        self.uid, self.title = uid, title
        self._next_id = 1
        self._builder = (
            dash.Dashboard(title).uid(uid).description(description).tags([TAG]).editable()
            .tooltip(model.DashboardCursorSync.CROSSHAIR).time(time_from, "now").refresh(refresh)
            .timezone("browser")
            .link(dash.DashboardLink("LLM observability").type(model.DashboardLinkType.DASHBOARDS)
                  .tags([TAG]).as_dropdown(True).include_vars(True).keep_time(True))
            .with_variable(datasource_variable())
        )
        for variable in variables:
            self._builder = self._builder.with_variable(variable)

    def row(self, title: str) -> Board:
        self._builder = self._builder.with_row(dash.Row(title).id(self._take_id()))
        return self

    def add(self, *panels: Any) -> Board:
        for panel in panels:
            self._builder = self._builder.with_panel(panel.id(self._take_id()))
        return self

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def to_dict(self) -> dict[str, Any]:
        dashboard = json.loads(json.dumps(self._builder.build(), cls=JSONEncoder))
        _layout(dashboard["panels"])
        return dashboard


def _layout(panels: list[dict[str, Any]]) -> None:
    """Left to right, wrapping before a panel that would overflow the 24-column grid; rows start a line."""
    x = y = line_height = 0
    for panel in panels:
        pos = panel["gridPos"]
        if panel["type"] == "row" or x + pos["w"] > 24:
            x, y, line_height = 0, y + line_height, 0
        pos["x"], pos["y"] = x, y
        if panel["type"] == "row":
            y += pos["h"]
            continue
        x += pos["w"]
        line_height = max(line_height, pos["h"])


def datasource_variable() -> dash.DatasourceVariable:
    return (
        dash.DatasourceVariable(DATASOURCE_VARIABLE).label("Data source").type("prometheus")
        .description("The Prometheus that scrapes the fleet and evaluates the llmobs recording rules.")
    )


def query_variable(name: str, label: str, query: str, description: str, *, include_all: bool = True,
                   hide: bool = False) -> dash.QueryVariable:
    """A multi-value variable filled by `label_values(...)`; 'All' matches every value (regex `.*`)."""
    variable = (
        dash.QueryVariable(name).label(label).description(description).datasource(DATASOURCE).query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(include_all).include_all(include_all)
    )
    if include_all:
        variable = variable.all_value(".*")
    if hide:
        variable = variable.hide(model.VariableHide.HIDE_VARIABLE)
    return variable


def constant_variable(name: str, value: str, description: str) -> dash.ConstantVariable:
    return dash.ConstantVariable(name).value(value).description(description)
