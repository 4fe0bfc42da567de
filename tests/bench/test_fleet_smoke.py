"""The fleet benchmark's smallest configuration runs end to end (llmobs bench fleet): the simulators' series
backfilled by promtool, the rules backfilled, a real Prometheus 3.5 measured. A smoke test, so the benchmark
keeps working: it checks the output's shape and that every figure is there, never how fast anything is."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from llmobs.fleetbench.run import PROMETHEUS_GLOB, PROMTOOL
from llmobs.fleetbench.synth import NODE_EXPORTER_GLOB

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache"
SUMMARY = re.compile(
    r"^fleet N=2 gpus=16 engines=4: panels p95 \d+ ms \(worst llmobs-[\w-]+/.+ \d+ ms\); official/ours "
    r"\d+\.\dx \(median over questions\); rule eval worst [\w.-]+ \d+\.\d% of interval; series/host \d+; "
    r"rss \d+\.\d\d GiB$")


def _missing() -> str | None:
    for glob in (PROMETHEUS_GLOB, PROMTOOL, NODE_EXPORTER_GLOB):
        if not list(CACHE.glob(glob)):
            return f"{glob} is not under {CACHE} (run `llmobs setup`)"
    return None


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_smallest_fleet_prints_every_figure(tmp_path: Path, figure) -> None:
    run = subprocess.run([sys.executable, "-m", "llmobs", "bench", "fleet", "--hosts", "2", "--hours", "0.25",
                          "--workdir", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    summaries = [line for line in run.stdout.splitlines() if re.match(r"fleet N=\d+ gpus=", line)]
    assert len(summaries) == 1 and SUMMARY.match(summaries[0]), summaries
    figure(summaries[0])
    result = json.loads((tmp_path / "n2-h0.25" / "result.json").read_text())
    assert result["build"]["samples"] > 0 and result["build"]["backfill_samples_per_s"] > 0
    # The node page is stored as the node job's keep-list keeps it (llmobs.node_keep), not whole.
    assert 0 < result["build"]["node_kept_series"] < result["build"]["node_page_series"] / 5, result["build"]
    boards = {panel["dashboard"] for panel in result["panels"]}
    assert boards == {"llmobs-fleet", "llmobs-vllm", "llmobs-slo", "llmobs-efficiency", "llmobs-gpu-node"}
    assert not [p for p in result["panels"] if p["error"]], "every panel query is valid PromQL"
    assert all(q["official_series"] > 0 and q["ours_series"] > 0 for q in result["official"]), result["official"]
    assert {"llmobs.inventory", "llmobs.slo.ttft.sli"} <= {g["group"] for g in result["groups"]}
    assert {"dcgm", "vllm", "node"} <= set(result["series_per_host"])
    assert result["rss_bytes"] > 0 and result["disk_per_host_day"] > 0 and result["active_series"] > 0
    # The placed faults lie in the data's past when it measures: the lost GPU's alert fires (`for: 0s`), the
    # throttling one is at least pending (`for: 5m` on a Prometheus that just started).
    assert result["alerts"]["GpuMissing on gpu-node-000"] == "firing", result["alerts"]
    assert result["alerts"]["GpuThermalThrottling on gpu-node-001"] in {"pending", "firing"}, result["alerts"]
    assert len(result["alerts"]) == 2
    for table in ("panels", "official dashboards vs ours", "rule groups (live)", "series per host by job"):
        assert table in run.stdout
