"""Helpers of the simulator tests: counters CSVs, a stepped DCGM exporter, exposition parsing."""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmobs import catalog as catalog_mod
from llmobs.sim.dcgm import DcgmExporterSim, ExporterOptions, GpuLoad, GpuSim

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
COUNTERS = REPO / "compose" / "dcgm-exporter" / "counters.csv"
SERIES = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)\{(?P<labels>.*)\} (?P<value>\S+)$")
LABEL = re.compile(r'(?P<key>[A-Za-z_][A-Za-z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')
BUSY = GpuLoad(busy=1.0, intensity=0.6, fb_fraction=0.9)


def series(text: str) -> list[tuple[str, list[tuple[str, str]], str]]:
    """(name, [(label, value)] in order, value token) of every sample line."""
    out = []
    for line in text.splitlines():
        match = SERIES.match(line)
        if match:
            labels = [(m["key"], m["value"]) for m in LABEL.finditer(match["labels"])]
            out.append((match["name"], labels, match["value"]))
    return out


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def catalog_counters() -> str:
    """A counters CSV with every GPU field of the catalog (quoted where the help has a comma)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for metric in catalog_mod.load().layer_metrics("gpu"):
        writer.writerow([metric.name, metric.type, metric.help])
    writer.writerow(["DCGM_FI_DRIVER_VERSION", "label", "Driver Version"])
    return out.getvalue()


@pytest.fixture
def make_exporter(tmp_path: Path) -> Callable[..., tuple[DcgmExporterSim, list[GpuSim]]]:
    """A DCGM exporter over `gpus` simulated GPUs of `model`, for the given counters CSV text."""

    def make(csv_text: str | None = None, model: str = "H100-SXM", gpus: int = 2,
             **options: object) -> tuple[DcgmExporterSim, list[GpuSim]]:
        path = tmp_path / "counters.csv"
        path.write_text(csv_text if csv_text is not None else catalog_counters(), encoding="utf-8")
        gpu_model = catalog_mod.load().gpu_models[model]
        sims = [GpuSim("node-a", i, gpu_model, random.Random(i)) for i in range(gpus)]
        opts = {"collectors": path, "collect_interval_ms": 5000, "hostname": "node-a", **options}
        return DcgmExporterSim(sims, ExporterOptions(**opts)), sims

    return make
