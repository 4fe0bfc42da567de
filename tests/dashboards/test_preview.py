"""`llmobs dashboards preview`: the helpers that lay out and label a panel, a whole dashboard drawn from a
stand-in Prometheus (no Docker), and the fleet overview drawn from the lab's real Prometheus."""

from __future__ import annotations

import json
import math
import struct
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmobs.dashboards import preview
from llmobs.dashboards.preview import draw, fetch, units
from llmobs.dashboards.preview.draw import FIGURE_WIDTH_IN, GAP_IN, GRID_UNIT_HEIGHT_IN, HEADER_IN
from llmobs.dashboards.preview.fetch import Series

from .test_live import EXPECTED_EMPTY

REPO = Path(__file__).resolve().parents[2]
FLEET = json.loads((REPO / "grafana/dashboards/llmobs-fleet.json").read_text())


def panel(title: str, kind: str | None = None) -> dict[str, Any]:
    (found,) = [p for p in FLEET["panels"] if p["title"] == title and kind in (None, p["type"])]
    return found


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's signature and IHDR chunk; fails on anything that is not a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def expected_size(dashboard: dict[str, Any]) -> tuple[int, int]:
    grid_height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
    height_in = HEADER_IN + grid_height * GRID_UNIT_HEIGHT_IN + GAP_IN
    return round(FIGURE_WIDTH_IN * draw.DPI), round(height_in * draw.DPI)


@pytest.mark.parametrize(("value", "unit", "shown"), [
    (73.3, "percent", "73.3%"),
    (0.996, "percentunit", "99.6%"),
    (0.0004, "percentunit", "0.04%"),
    (0, "s", "0 s"),
    (0.25, "s", "250 ms"),
    (1.5, "s", "1.5 s"),
    (90, "s", "1.5 min"),
    (250, "ms", "250 ms"),
    (5420, "watt", "5.42 kW"),
    (89, "celsius", "89 °C"),
    (1536, "bytes", "1.5 KiB"),
    (81920, "mbytes", "80 GiB"),
    (2.5e7, "Bps", "25 MB/s"),
    (1.98e9, "hertz", "1.98 GHz"),
    (19.2, "reqps", "19.2 req/s"),
    (4610, "count:tok/s", "4.61K tok/s"),
    (27100, "short", "27.1 K"),
    (3, "none", "3"),
    (1234.5, "currencyUSD", "$1.23K"),
    (0.339, "kwatth", "0.339 kWh"),
    (12, "furlongs", "12 furlongs"),
    (math.nan, "s", "-"),
    (None, "short", "-"),
])
def test_values_are_shown_in_their_unit(value: float | None, unit: str, shown: str) -> None:
    assert units.format_value(value, unit) == shown


def test_stat_colour_is_the_last_threshold_step_reached() -> None:
    thresholds = panel("Smallest thermal margin")["fieldConfig"]["defaults"]["thresholds"]  # red, orange 2, green 5
    assert [units.threshold_color(v, thresholds) for v in (1, 2, 4.9, 5, 30)] == (
        ["#F2495C", "#FF9830", "#FF9830", "#73BF69", "#73BF69"])


def test_series_are_named_by_legend_format_or_labels() -> None:
    labels = {"__name__": "up", "model_name": "llama", "instance": "h:8000"}
    assert fetch.legend_name("{{model_name}} @ {{ instance }}", labels, "up") == "llama @ h:8000"
    assert fetch.legend_name("running {{missing}}", labels, "up") == "running"
    assert fetch.legend_name("__auto", labels, "up") == 'up{instance="h:8000", model_name="llama"}'
    assert fetch.legend_name("__auto", {}, "sum(rate(x[1m]))") == "sum(rate(x[1m]))"


def test_overrides_apply_to_the_fields_they_match() -> None:
    gpu = json.loads((REPO / "grafana/dashboards/llmobs-gpu-node.json").read_text())
    (temperature,) = [p for p in gpu["panels"] if p["title"] == "Temperature against the GPU's own limits"]
    limit = units.field_config(temperature, "slowdown gpu-h100-1 GPU 2")
    reading = units.field_config(temperature, "gpu-h100-1 GPU 2")
    assert limit["custom"]["lineStyle"]["fill"] == "dash" and limit["custom"]["fillOpacity"] == 0
    assert "lineStyle" not in reading["custom"] and reading["custom"]["fillOpacity"] == 10
    assert units.field_config(panel("Hosts"), "Thermal margin")["unit"] == "celsius"


def test_table_merges_queries_on_labels_and_applies_organize() -> None:
    hosts = panel("Hosts")
    series = [Series("", {"__name__": "host:dcgm_gpus:count", "host": "h1"}, "A", (8.0,)),
              Series("", {"host": "h1"}, "D", (3.0,)),
              Series("", {"host": "h2"}, "A", (4.0,))]
    columns, rows = fetch.table_frame(hosts, series)
    assert columns == ["host", "GPUs", "Thermal margin"]
    assert rows == [{"host": "h1", "GPUs": 8.0, "Thermal margin": 3.0}, {"host": "h2", "GPUs": 4.0}]
    alerts = panel("Firing alerts", "table")
    columns, _rows = fetch.table_frame(alerts, [Series("", {"__name__": "ALERTS", "alertname": "Watchdog",
                                                      "alertstate": "firing"}, "A", (1.0,))])
    assert columns == ["alertname"]  # Value and alertstate excluded by the panel's organize


def test_panels_sit_on_the_24_column_grid() -> None:
    box = draw.panel_box({"x": 12, "y": 5, "w": 12, "h": 8})
    assert box.left == pytest.approx(FIGURE_WIDTH_IN / 2 + GAP_IN)
    assert box.left + box.width == pytest.approx(FIGURE_WIDTH_IN - GAP_IN)
    assert box.top == pytest.approx(HEADER_IN + 5 * GRID_UNIT_HEIGHT_IN + GAP_IN)
    assert box.height == pytest.approx(8 * GRID_UNIT_HEIGHT_IN - 2 * GAP_IN)


def test_axis_bounds() -> None:
    assert draw.value_bounds(np.array([[0.0, 0.0, math.nan]]), 0, None) == (0, 1.0)       # flat zero: 0 to 1
    assert draw.value_bounds(np.array([[0.0, 10.0]]), None, None) == (0.0, 10.5)          # never below zero
    assert draw.value_bounds(np.array([[60.0, 80.0]]), None, None) == (59.0, 81.0)        # the data's range
    assert draw.value_bounds(np.array([[0.2, 0.4]]), 0, 1) == (0, 1)                       # the panel's min, max


def test_time_grid_is_aligned_to_its_step() -> None:
    grid = fetch.time_grid(900, 1_000_007.0)
    assert grid[-1] == 1_000_005 and grid[-1] - grid[0] == 900 and len(grid) == 61
    day = fetch.time_grid(86400, 1_000_007.0)
    assert day[1] - day[0] == 360 and len(day) == 241   # at most MAX_POINTS (240) steps


class StandInPrometheus(BaseHTTPRequestHandler):
    """Answers every query with one series of value 1, except those on ALERTS, which answer nothing."""

    def do_GET(self) -> None:
        url = urllib.parse.urlparse(self.path)
        params = {key: values[0] for key, values in urllib.parse.parse_qs(url.query).items()}
        labels = {"model_name": "llama", "le": "0.5"}
        if "ALERTS" in params["query"]:
            result = []
        elif url.path.endswith("/query_range"):
            start, end, step = float(params["start"]), float(params["end"]), float(params["step"])
            points = [[start + i * step, "1"] for i in range(int((end - start) // step) + 1)]
            result = [{"metric": labels, "values": points}]
        else:
            result = [{"metric": labels, "value": [float(params["time"]), "1"]}]
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def stand_in_prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInPrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_render_reports_exactly_the_panels_without_data(stand_in_prometheus: str, tmp_path: Path) -> None:
    result = preview.render(FLEET, stand_in_prometheus, tmp_path / "fleet.png", range_s=900)
    assert png_size(result.path) == expected_size(FLEET)
    assert len(result.panels) == len(FLEET["panels"])
    assert sorted(result.empty()) == ["Firing alerts", "Firing alerts"]   # the stat and the table on ALERTS
    assert all(not summary.errors for summary in result.panels)


@pytest.mark.docker
@pytest.mark.lab
def test_fleet_overview_drawn_from_the_lab(lab_prometheus_url: str, tmp_path: Path, figure) -> None:
    result = preview.render(FLEET, lab_prometheus_url, tmp_path / "llmobs-fleet.png", range_s=900)
    width, height = png_size(result.path)
    figure(f"fleet overview preview: {width}x{height} px, {result.path.stat().st_size // 1024} KiB, "
           f"{len(result.panels)} panels, {len(result.empty())} without data")
    assert (width, height) == expected_size(FLEET)
    assert [s for s in result.panels if s.errors] == []
    assert sum(1 for s in result.panels if s.kind != "row") == 31
    assert [title for title in result.empty() if (FLEET["title"], title) not in EXPECTED_EMPTY] == []
