"""Helpers of the simulator tests: counters CSVs, a stepped DCGM exporter, exposition parsing."""

from __future__ import annotations

import csv
import io
import random
import re
from collections import defaultdict
from collections.abc import Callable, Collection
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
HEADER = re.compile(r"^# (HELP|TYPE) (\S+) ?(.*)$")
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


def shape(text: str, free: Collection[str], counted: dict[str, Collection[str]] | None = None,
          unvalued: Collection[str] = ()) -> dict[str, dict]:
    """Per exposed family (the name on its `# TYPE` line): type, HELP, sample names, label names, the
    values of enumerated labels (all but the `free` ones, which describe the server the page came from, and
    the `counted` ones, whose children exist once something was counted: their values must be of the given
    lists), and each histogram's `le` strings in order. Families in `unvalued` keep only their label names."""
    counted = counted or {}
    families: dict[str, dict] = {}
    for line in text.splitlines():
        match = HEADER.match(line)
        if match:
            kind, name, rest = match.groups()
            family = families.setdefault(name, {"samples": set(), "labels": set(), "values": defaultdict(set),
                                                "le": []})
            family["help" if kind == "HELP" else "type"] = rest
    names = sorted(families, key=len, reverse=True)
    for name, labels, _ in series(text) + [(line.split(" ")[0], [], "") for line in text.splitlines()
                                            if line and not line.startswith("#") and "{" not in line.split(" ")[0]]:
        family = next(f for f in names if name == f or name.startswith(f + "_"))
        found = families[family]
        found["samples"].add(name)
        found["labels"].add(tuple(sorted(key for key, _ in labels if key != "le")))
        for key, value in labels:
            if key not in set(free) | set(counted) and family not in unvalued:
                found["values"][key].add(value)
            assert key not in counted or value in counted[key], (name, key, value)
        le = dict(labels).get("le")
        if le is not None and le not in found["le"]:
            found["le"].append(le)
    return families


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
