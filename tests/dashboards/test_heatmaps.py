"""The vLLM dashboard's latency heatmaps read the per-model bucket rates (a series per model and bucket, whatever
the fleet's size) while host and instance are at "All", and the per-engine ones once either is chosen: each
query, as Grafana sends it (llmobs.dashboards.live), evaluated by the real promtool over both recorded levels."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from llmobs import tools
from llmobs.conventions import latency_buckets
from llmobs.dashboards.live import substitute_live

REPO = Path(__file__).resolve().parents[2]
HISTOGRAM = "engine_inter_token_latency_seconds"
TITLE = "Inter-token latency (every engine): distribution"
# Per-engine bucket rates of two engines, and a per-model rate that differs from their sum on purpose: the
# result tells which level the query read.
ENGINES = {("gpu-a", "gpu-a:8000"): 1, ("gpu-b", "gpu-b:8000"): 2}
PER_MODEL = 7


def _heatmap_query() -> str:
    board = json.loads((REPO / "grafana/dashboards/llmobs-vllm.json").read_text(encoding="utf-8"))
    panels = [p for p in board["panels"] if p.get("title") == TITLE]
    assert len(panels) == 1, f"no single panel titled {TITLE!r}"
    assert panels[0]["type"] == "heatmap"
    (target,) = panels[0]["targets"]
    return target["expr"]


def _input() -> list[dict[str, str]]:
    series = [{"series": f'{latency_buckets(HISTOGRAM, "model")}{{model_name="m", le="0.1"}}',
               "values": f"{PER_MODEL}x10"}]
    series += [{"series": f'{latency_buckets(HISTOGRAM, "instance_model")}'
                          f'{{host="{host}", instance="{instance}", model_name="m", le="0.1"}}',
                "values": f"{value}x10"} for (host, instance), value in ENGINES.items()]
    return series


# (what is chosen, Grafana's values of host and instance, the sum the heatmap's one band must show)
CASES = [
    ("host and instance at All: the per-model rates", ".*", ".*", PER_MODEL),
    ("one host: its engines", "gpu-a", ".*", 1),
    ("one instance: that engine", ".*", "gpu-b:8000", 2),
    ("two hosts (a multi-value regex): their engines", "(gpu-a|gpu-b)", ".*", 3),
]


def test_heatmap_reads_the_per_model_rates_only_at_all(tmp_path: Path) -> None:
    found = tools.versions("promtool")
    if not found:
        pytest.skip(f"promtool is not in {tools.TOOLS_DIR} (`llmobs setup` unpacks it from Debian)")
    query = _heatmap_query()
    checks = [{"expr": substitute_live(query, {"host": host, "instance": instance, "model_name": ".*"}),
               "eval_time": "5m", "exp_samples": [{"labels": '{le="0.1"}', "value": value}]}
              for _case, host, instance, value in CASES]
    test = {"rule_files": [], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": _input(), "promql_expr_test": checks}]}
    (tmp_path / "heatmap.test.yml").write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    result = subprocess.run([str(found[0].path), "test", "rules", "heatmap.test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{[case[0] for case in CASES]}:\n{result.stdout}{result.stderr}"
