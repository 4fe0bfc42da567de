"""Preview a dashboard without Grafana: run its panel queries against a real Prometheus and draw the result.

Where no Grafana runs (its image could not be had where the kit was built) this still shows what a dashboard
shows: every panel at its gridPos on Grafana's 24-column grid, fed by its own PromQL with the variables at
"All" (as `llmobs dashboards probe` sends them), time series as lines in the panel's unit, stats as a number
coloured by the panel's thresholds, tables as their first rows, and "No data" where a query returned nothing.
The styling is only Grafana-like; the queries are the dashboard's.

The work is in three modules: `fetch` (the Prometheus queries and what the panels get), `units` (Grafana's
unit formatting and threshold colours) and `draw` (the grid geometry and the renderers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmobs.dashboards.preview import draw, fetch


@dataclass(frozen=True)
class PanelSummary:
    """What one drawn panel got: how many series (0 is drawn as "No data") and the query errors."""

    title: str
    kind: str
    series: int
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preview:
    """What `render` drew: the dashboard's title, the PNG, and a summary per top-level panel."""

    dashboard: str
    path: Path
    panels: list[PanelSummary]

    def empty(self) -> list[str]:
        """Titles of the panels drawn as "No data"."""
        return [panel.title for panel in self.panels if panel.kind != "row" and panel.series == 0]


def render(dashboard: dict[str, Any], prometheus_url: str, out: Path, range_s: float = 900) -> Preview:
    """Query the last `range_s` seconds and draw one dashboard into the PNG `out`; returns what each
    top-level panel got."""
    end = time.time()
    data = fetch.panel_data(dashboard, prometheus_url, range_s, end)
    panels = dashboard.get("panels", [])
    drawing = draw.Drawing(max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=0))
    title = dashboard.get("title", "?")
    draw.draw_header(drawing, title, range_s, end)
    summaries = []
    for panel in panels:
        got = data.get(panel.get("id"), fetch.PanelData(panel, ()))
        draw.draw_panel(drawing, panel, got)
        summaries.append(PanelSummary(panel.get("title", ""), panel.get("type", "?"), len(got.series),
                                      tuple(got.errors)))
    draw.save_png(drawing, out)
    return Preview(title, out, summaries)
