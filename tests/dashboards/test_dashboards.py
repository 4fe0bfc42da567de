"""The dashboard generator: structure, links, thresholds from the settings, and every kind of bad input."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.models import units
from typer.testing import CliRunner

import llmobs.dashboards as dashboards_mod
from llmobs.dashboards import common, context, dashboard_artifacts, render
from llmobs.dashboards.cli import app as dashboards_cli
from llmobs.dashboards.lint import dashboard_queries, lint_dashboard, selectors, substitute_variables
from llmobs.dashboards.panels import Board, Target, timeseries_panel
from llmobs.dashboards.provisioning import Provisioning
from llmobs.errors import ConfigError
from llmobs.generate import LAB_SETTINGS
from llmobs.rules import panel_thresholds
from llmobs.settings import load_settings, load_settings_file

REPO = Path(__file__).resolve().parents[2]
UIDS = {
    "llmobs-fleet": "LLM fleet overview",
    "llmobs-vllm": "vLLM serving",
    "llmobs-gpu-node": "GPU node",
    "llmobs-slo": "SLOs and error budgets",
    "llmobs-efficiency": "Efficiency and capacity",
}


def generate(overrides: dict[str, Any] | None = None, provisioning: Provisioning | None = None) -> dict[str, str]:
    return dashboard_artifacts(load_settings(overrides), provisioning)


def boards(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {json.loads(text)["uid"]: json.loads(text) for path, text in files.items() if path.endswith(".json")}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    (found,) = [p for p in panels(dashboard) if p["title"] == title]
    return found


def steps(found: dict[str, Any]) -> list[tuple[float | None, str]]:
    return [(s["value"], s["color"]) for s in found["fieldConfig"]["defaults"]["thresholds"]["steps"]]


@pytest.fixture(scope="module")
def default_boards() -> dict[str, dict[str, Any]]:
    return boards(generate({"cost": {"gpu_hour_usd": 2.5}}))


# ---------------------------------------------------------------------------------------------- structure
# Renders the lab's dashboards in a fresh interpreter and prints {path: sha256} of every file.
_DIGESTS = """
import hashlib, json, sys
from pathlib import Path
from llmobs.dashboards import dashboard_artifacts
from llmobs.settings import load_settings_file
files = dashboard_artifacts(load_settings_file(Path(sys.argv[1])))
print(json.dumps({path: hashlib.sha256(text.encode()).hexdigest() for path, text in files.items()}))
"""


def _digests_in_subprocesses(*hash_seeds: str) -> list[dict[str, str]]:
    """The digests from one interpreter per hash seed, run side by side."""
    runs = [subprocess.Popen([sys.executable, "-c", _DIGESTS, str(REPO / LAB_SETTINGS)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO / "src")})
            for seed in hash_seeds]
    digests = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        digests.append(json.loads(out))
    return digests


def test_generation_is_deterministic_across_processes() -> None:
    """Two interpreters with different string hash seeds (set iteration order) write the same bytes, and
    this process agrees: nothing in the output depends on a set's or a dict's accidental order."""
    first, second = _digests_in_subprocesses("1", "4242")
    here = {path: hashlib.sha256(text.encode()).hexdigest()
            for path, text in dashboard_artifacts(load_settings_file(REPO / LAB_SETTINGS)).items()}
    assert len(first) == len(UIDS) + 2
    assert first == second == here


def test_the_five_dashboards_and_their_files(default_boards: dict[str, dict[str, Any]]) -> None:
    assert {uid: d["title"] for uid, d in default_boards.items()} == UIDS
    files = generate()
    assert sorted(files) == sorted(
        [f"grafana/dashboards/{uid}.json" for uid in UIDS]
        + ["grafana/provisioning/dashboards/llmobs.yaml", "grafana/provisioning/datasources/llmobs.yaml"])


def test_every_panel_is_complete_and_every_query_known(default_boards: dict[str, dict[str, Any]]) -> None:
    known = context(load_settings()).known_series()
    total = 0
    for dashboard in default_boards.values():
        assert lint_dashboard(dashboard, known) == []
        for found in panels(dashboard):
            total += 1
            assert found["title"] and found["description"] and found["fieldConfig"]["defaults"]["unit"]
            assert found["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert all(t["datasource"]["uid"] == "${datasource}" and t["refId"] for t in found["targets"])
    assert total > 100


def test_datasource_is_a_variable_and_there_are_no_inputs(default_boards: dict[str, dict[str, Any]]) -> None:
    for dashboard in default_boards.values():
        assert "__inputs" not in dashboard
        variables = dashboard["templating"]["list"]
        assert variables[0]["name"] == "datasource" and variables[0]["type"] == "datasource"
        assert all(v["datasource"]["uid"] == "${datasource}" for v in variables if v["type"] == "query")


def test_shared_variable_names(default_boards: dict[str, dict[str, Any]]) -> None:
    names = {uid: [v["name"] for v in d["templating"]["list"]] for uid, d in default_boards.items()}
    assert names["llmobs-fleet"] == ["datasource", "model_name"]
    assert names["llmobs-vllm"] == ["datasource", "host", "model_name", "instance"]
    assert names["llmobs-gpu-node"] == ["datasource", "host", "gpu"]
    assert names["llmobs-slo"] == ["datasource", "model_name", "slo"]
    assert names["llmobs-efficiency"] == ["datasource", "host", "gpu_hour_usd"]


def _links(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["url"]] if isinstance(value.get("url"), str) else []
        return own + [url for item in value.values() for url in _links(item)]
    if isinstance(value, list):
        return [url for item in value for url in _links(item)]
    return []


def test_links_reach_existing_dashboards_and_variables(default_boards: dict[str, dict[str, Any]]) -> None:
    """fleet -> host/GPU -> model/instance: every data link opens a dashboard that has its variables."""
    reached = set()
    for uid, dashboard in default_boards.items():
        for url in _links(dashboard["panels"]):
            target, query = re.fullmatch(r"/d/([\w-]+)/\?(.*)", url).groups()
            variables = {v["name"] for v in default_boards[target]["templating"]["list"]}
            passed = set(re.findall(r"var-(\w+)=", query))
            assert passed and passed <= variables, (uid, url)
            assert "${datasource:queryparam}" in query and "${__url_time_range}" in query
            reached.add((uid, target))
        assert dashboard["links"][0]["tags"] == ["llmobs"] and dashboard["links"][0]["includeVars"]
    assert {("llmobs-fleet", "llmobs-gpu-node"), ("llmobs-fleet", "llmobs-vllm"),
            ("llmobs-gpu-node", "llmobs-vllm"), ("llmobs-vllm", "llmobs-gpu-node")} <= reached


def test_fleet_panels_read_recording_rules(default_boards: dict[str, dict[str, Any]]) -> None:
    catalog = context(load_settings()).catalog
    recorded = catalog.recorded_names()
    # One number each over the per-GPU fault series and Prometheus' own alert series: no rule needed.
    raw_allowed = {"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "DCGM_FI_DEV_ROW_REMAP_FAILURE",
                   "DCGM_FI_DEV_ROW_REMAP_PENDING", "ALERTS"}
    for _panel, query in dashboard_queries(default_boards["llmobs-fleet"]):
        for name, _labels in selectors(substitute_variables(query.expr, {"model_name": "query"})):
            assert name in recorded or name in raw_allowed, (query.panel, name)


def test_optional_panels_say_so(default_boards: dict[str, dict[str, Any]]) -> None:
    gpu, vllm = default_boards["llmobs-gpu-node"], default_boards["llmobs-vllm"]
    for title in ("SM active", "Tensor pipe active", "DRAM active", "Graphics engine active", "PCIe traffic"):
        assert "SYS_ADMIN and a data-centre GPU" in panel(gpu, title)["description"]
    for title in ("Draft acceptance rate", "Mean acceptance length", "Draft and accepted tokens/s"):
        assert "speculative_config" in panel(vllm, title)["description"]


def test_grid_never_overflows(default_boards: dict[str, dict[str, Any]]) -> None:
    for dashboard in default_boards.values():
        cells = set()
        for found in dashboard["panels"]:
            pos = found["gridPos"]
            assert pos["x"] + pos["w"] <= 24
            area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & area, found["title"]
            cells |= area


# ---------------------------------------------------------------------------------------------- committed output
def test_committed_output_is_what_the_generator_produces() -> None:
    """Drift: grafana/ holds exactly what `llmobs generate` renders from the lab settings."""
    files = dashboard_artifacts(load_settings_file(REPO / LAB_SETTINGS))
    committed = {p.relative_to(REPO).as_posix() for p in (REPO / "grafana").rglob("*") if p.is_file()}
    assert committed == set(files), "run `llmobs generate` and commit grafana/"
    for path, text in files.items():
        assert (REPO / path).read_text(encoding="utf-8") == text, f"{path} differs: run `llmobs generate`"


def test_committed_dashboards_lint_clean() -> None:
    """Every committed query parses with Grafana's variables substituted, uses defined variables and reads
    only catalog metrics (with labels they carry) or recording rules; every panel has title, unit and
    description."""
    known = context(load_settings_file(REPO / LAB_SETTINGS)).known_series()
    paths = sorted((REPO / "grafana/dashboards").glob("*.json"))
    assert len(paths) == len(UIDS)
    queries = 0
    for path in paths:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        assert lint_dashboard(dashboard, known) == [], path
        queries += sum(1 for _ in dashboard_queries(dashboard))
    assert queries > 150


def test_the_dashboards_command_lints_the_committed_files() -> None:
    paths = [str(p) for p in sorted((REPO / "grafana/dashboards").glob("*.json"))]
    result = CliRunner().invoke(dashboards_cli, ["lint", *paths, "--settings", str(REPO / LAB_SETTINGS)])
    assert result.exit_code == 0, result.output
    assert f"{len(UIDS)} dashboard(s) clean" in result.output


# ---------------------------------------------------------------------------------------------- settings
def test_thresholds_come_from_the_settings() -> None:
    changed = boards(generate({
        "thresholds": {"kv_cache_usage_warning": 0.8, "engine_error_ratio_warning": 0.02,
                       "engine_error_ratio_critical": 0.1, "gpu_temp_margin_warning_celsius": 8,
                       "gpu_temp_margin_critical_celsius": 3, "queue_waiting_requests_warning": 20,
                       "gpu_power_over_limit_ratio": 1.1, "disk_free_ratio_warning": 0.2,
                       "disk_free_ratio_critical": 0.1},
        "slo": {"defaults": {"ttft_seconds": 0.5}},
    }))
    fleet, vllm, gpu = changed["llmobs-fleet"], changed["llmobs-vllm"], changed["llmobs-gpu-node"]
    assert steps(panel(vllm, "KV-cache usage")) == [(None, "green"), (0.8, "orange")]
    assert steps(panel(fleet, "Engine error ratio by model")) == [(None, "green"), (0.02, "orange"), (0.1, "red")]
    assert steps(panel(gpu, "Thermal margin")) == [(None, "red"), (3, "orange"), (8, "green")]
    assert steps(panel(vllm, "Waiting requests")) == [(None, "green"), (20, "orange")]
    assert steps(panel(gpu, "Power / enforced limit")) == [(None, "green"), (1.1, "orange")]
    assert steps(panel(gpu, "Free space on model and data volumes")) == [(None, "red"), (0.1, "orange"), (0.2, "green")]
    assert steps(panel(fleet, "P95 time to first token by model")) == [(None, "green"), (0.5, "red")]
    assert "0.5 s" in panel(fleet, "P95 time to first token by model")["description"]


def test_panels_of_alerted_series_draw_the_alert_thresholds(default_boards: dict[str, dict[str, Any]]) -> None:
    """Wherever a panel plots a series an alert compares with a setting, it draws that setting's value
    and names the alert, so the picture and the page agree."""
    checked = 0
    for series, lines in panel_thresholds(load_settings()).items():
        for dashboard in default_boards.values():
            for found in panels(dashboard):
                exprs = [t["expr"] for t in found["targets"]]
                # Tables colour columns instead; headroom panels plot 1 - series.
                if found["type"] == "table" or not any(series in e and not e.startswith("1 - ") for e in exprs):
                    continue
                checked += 1
                values = {value for value, _colour in steps(found)}
                for line in lines:
                    assert line["value"] in values, (dashboard["title"], found["title"], line)
                    assert line["alert"] in found["description"] and line["setting"] in found["description"]
    assert checked >= 10


def test_per_model_slo_targets_are_described() -> None:
    fleet = boards(generate({"slo": {"models": {"llama-70b": {"ttft_seconds": 2.5}}}}))["llmobs-fleet"]
    assert "llama-70b 2.5 s" in panel(fleet, "P95 time to first token by model")["description"]


def test_cost_panels_need_a_gpu_price() -> None:
    without = boards(generate())["llmobs-efficiency"]
    assert not [p for p in panels(without) if "Cost" in p["title"]]
    assert "Set cost.gpu_hour_usd" in without["description"]
    priced = boards(generate({"cost": {"gpu_hour_usd": 3.2}}))["llmobs-efficiency"]
    cost = panel(priced, "Cost per million tokens")
    assert cost["fieldConfig"]["defaults"]["unit"] == units.Dollars
    assert "$gpu_hour_usd" in cost["targets"][0]["expr"]
    (price,) = [v for v in priced["templating"]["list"] if v["name"] == "gpu_hour_usd"]
    assert price["type"] == "constant" and price["query"] == "3.2"


def test_the_host_label_is_a_setting() -> None:
    renamed = boards(generate({"labels": {"host": "node"}}))
    exprs = [q.expr for d in renamed.values() for _p, q in dashboard_queries(d)]
    assert any('node=~"$host"' in e for e in exprs)
    assert not any('host=~"$host"' in e for e in exprs)
    known = context(load_settings({"labels": {"host": "node"}})).known_series()
    assert all(lint_dashboard(d, known) == [] for d in renamed.values())


# ---------------------------------------------------------------------------------------------- bad input
def _board_with(expr: str, description: str = "Shows x. Good: low.", unit: str = units.Short) -> Board:
    variables = [common.gpu_variable(context(load_settings()))]
    board = Board("test-bad", "Bad board", "A board with one bad panel.", variables)
    return board.add(timeseries_panel("Bad panel", description, unit, [Target(expr)]))


BAD_QUERIES = {
    "does not parse": "sum(rate(vllm:prompt_tokens_total[5m])",
    "unknown metric": "sum(rate(vllm:request_total[5m]))",
    "undefined variable": 'DCGM_FI_DEV_GPU_TEMP{gpu=~"$gpus"}',
    "label the metric does not carry": 'sum(rate(http_requests_total{model_name="x"}[5m]))',
    "renamed metric without a rule": "vllm:time_per_output_token_seconds",
    "metric name chosen by regex": '{__name__=~"vllm:.*"}',
    "fixed window instead of $__rate_interval": "sum(rate(vllm:prompt_tokens_total[5m]))",
}


@pytest.mark.parametrize("kind", sorted(BAD_QUERIES))
def test_a_bad_query_fails_generation_naming_dashboard_panel_and_query(kind: str) -> None:
    expr = BAD_QUERIES[kind]
    with pytest.raises(ConfigError) as caught:
        render([_board_with(expr)], context(load_settings()).known_series())
    message = str(caught.value)
    assert 'dashboard "Bad board"' in message and 'panel "Bad panel"' in message and "query A" in message
    assert expr in message


@pytest.mark.parametrize(("description", "unit", "problem"), [("", units.Short, "has no description"),
                                                              ("Shows x.", "", "has no unit")])
def test_a_panel_without_description_or_unit_fails(description: str, unit: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        render([_board_with("DCGM_FI_DEV_GPU_TEMP", description, unit)], context(load_settings()).known_series())


def test_variable_queries_are_linted() -> None:
    board = _board_with("DCGM_FI_DEV_GPU_TEMP").to_dict()
    board["templating"]["list"][1]["query"] = "label_values(DCGM_FI_DEV_GPU_TEMP, model_name)"
    (error,) = lint_dashboard(board, context(load_settings()).known_series())
    assert "variable $gpu" in str(error) and "model_name" in str(error)


def test_inputs_are_rejected() -> None:
    board = _board_with("DCGM_FI_DEV_GPU_TEMP").to_dict()
    board["__inputs"] = [{"name": "DS_PROMETHEUS"}]
    assert any("__inputs" in str(e) for e in lint_dashboard(board, context(load_settings()).known_series()))


def test_a_bad_dashboard_writes_nothing(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboards_mod, "BUILDERS", (*dashboards_mod.BUILDERS, lambda ctx: _board_with("nope_total")))
    result = CliRunner().invoke(dashboards_cli, ["render", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "nope_total" in result.output
    assert list(tmp_path.iterdir()) == []


def test_lint_command_reports_problems(tmp_path: Any) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_board_with("vllm:request_total").to_dict()))
    result = CliRunner().invoke(dashboards_cli, ["lint", str(bad)])
    assert result.exit_code == 1 and "vllm:request_total" in result.output


# ---------------------------------------------------------------------------------------------- provisioning
def test_provisioning_defaults() -> None:
    files = generate()
    sources = yaml.safe_load(files["grafana/provisioning/datasources/llmobs.yaml"])["datasources"]
    assert [(s["uid"], s["type"], s["url"]) for s in sources] == [
        ("prometheus", "prometheus", "http://prometheus:9090"),
        ("alertmanager", "alertmanager", "http://alertmanager:9093")]
    (provider,) = yaml.safe_load(files["grafana/provisioning/dashboards/llmobs.yaml"])["providers"]
    assert provider["options"]["path"] == "/etc/grafana/dashboards" and provider["folderUid"] == "llmobs"


def test_provisioning_urls_are_parameters() -> None:
    files = generate(provisioning=Provisioning(prometheus_url="https://prom.example:9091/",
                                               alertmanager_url="http://10.0.0.5:9093",
                                               dashboards_path="/opt/dashboards"))
    text = files["grafana/provisioning/datasources/llmobs.yaml"]
    assert "url: https://prom.example:9091\n" in text and "url: http://10.0.0.5:9093\n" in text
    assert "path: /opt/dashboards" in files["grafana/provisioning/dashboards/llmobs.yaml"]


def test_a_bad_provisioning_url_names_the_field() -> None:
    with pytest.raises(ConfigError, match="prometheus_url"):
        Provisioning.from_mapping({"prometheus_url": "prometheus:9090"})
