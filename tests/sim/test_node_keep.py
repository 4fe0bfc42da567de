"""The node job's keep-list (llmobs.node_keep): Prometheus stores the node_exporter series the kit's rules and
dashboards read, and nothing else unless the site asks. Checked against the committed rules and dashboards,
with promtool, and with the real Prometheus scraping the real node_exporter (both from `llmobs setup`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from ports import free_ports, wait_until_ready

from llmobs import node_keep, promql, scrape
from llmobs.dashboards.lint import dashboard_queries, substitute_variables, variable_queries
from llmobs.fleetbench.run import PROMETHEUS_GLOB
from llmobs.fleetbench.synth import NODE_EXPORTER_GLOB, relabeled
from llmobs.preflight import textfile
from llmobs.settings import load_settings, load_settings_file

from .conftest import REPO

CACHE = REPO / ".cache"
# Prometheus' own series of a target: not scraped, so never relabeled away.
TARGET_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                 "scrape_series_added"}
# A GPU preflight's verdicts, as the gpu_preflight role writes them into node_exporter's textfile directory.
REPORT = {"facts": {"fabric_manager_running": 1, "persistence_mode_off_gpus": 0, "row_remap_pending_gpus": 0,
                    "driver_version": "570.133.20"},
          "checks": [{"name": "driver", "verdict": "PASS"}, {"name": "persistence_mode", "verdict": "PASS"}],
          "gpu_count": 8, "nvswitch_count": 4}


def _node_job(config_text: str) -> dict[str, Any]:
    return next(job for job in yaml.safe_load(config_text)["scrape_configs"] if job["job_name"] == "node")


def _served_by_node_exporter(name: str) -> bool:
    return name.startswith("node_") or name in textfile.NAMES


def _committed_reads() -> set[str]:
    """The series names the committed rule files and dashboards select."""
    names: set[str] = set()
    for path in sorted((REPO / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                names |= promql.selector_names(rule["expr"], f"{path.name}: {group['name']}")
    for path in sorted((REPO / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        types = {v["name"]: v.get("type", "") for v in dashboard["templating"]["list"]}
        for query in [*(q for _, q in dashboard_queries(dashboard)), *variable_queries(dashboard)]:
            if query.expr:
                names |= promql.selector_names(substitute_variables(query.expr, types), query.where())
    return names


def test_every_node_series_the_committed_rules_and_dashboards_read_is_kept() -> None:
    read = {name for name in _committed_reads() if _served_by_node_exporter(name)}
    # The alerts' filesystems, the GPU page's CPU and memory panels, the preflight alerts.
    assert {"node_cpu_seconds_total", "node_filesystem_avail_bytes", "node_memory_MemTotal_bytes",
            "llmobs_gpu_preflight_driver_info"} <= read
    keep = _node_job((REPO / "prometheus" / "prometheus.yml").read_text())["metric_relabel_configs"]
    assert [rule["action"] for rule in keep] == ["keep"]
    assert not [name for name in sorted(read) if not node_keep.keeps(keep, name)]
    for unread in ("node_network_receive_bytes_total", "node_load1", "node_scrape_collector_success",
                   "go_goroutines", "process_resident_memory_bytes"):
        assert not node_keep.keeps(keep, unread), unread
    # What the gpu-host-stack runbook points to, and every series of the preflight's textfile.
    assert all(node_keep.keeps(keep, name) for name in (*textfile.NAMES, *node_keep.TEXTFILE_COLLECTOR))


def _promtool_check(tmp: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (tmp / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp / path).write_text(text)
    done = subprocess.run([shutil.which("promtool") or str(CACHE / "tools/bin/promtool"), "check", "config",
                           str(tmp / "prometheus.yml")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("options", "kept", "dropped"), [
    ({}, ["node_cpu_seconds_total"], ["node_load1", "node_network_up"]),
    ({"node_keep_extra": ["node_load1", "node_network_.*"]}, ["node_cpu_seconds_total", "node_load1",
                                                              "node_network_up"], ["node_load5", "xnode_network_up"]),
    ({"node_keep": "all"}, ["node_load1", "node_network_up", "go_goroutines"], []),
], ids=["read", "extra", "all"])
def test_the_site_chooses_what_else_to_keep(tmp_path: Path, options: dict, kept: list, dropped: list) -> None:
    files = scrape.render([{"name": "gpu-01", "exporters": ["node"]}], load_settings(), options)
    _promtool_check(tmp_path, files)
    node = _node_job(files["prometheus.yml"])
    relabel = node.get("metric_relabel_configs", [])
    assert ("metric_relabel_configs" in node) == (options.get("node_keep") != "all")
    assert all(node_keep.keeps(relabel, name) for name in kept)
    assert not any(node_keep.keeps(relabel, name) for name in dropped)


def test_the_lab_keeps_what_its_settings_read() -> None:
    """The derivation, not a list: the committed lab config is what the lab settings' generators read."""
    settings = load_settings_file(REPO / "compose" / "lab-settings.yml")
    names = node_keep.kept_names(settings)
    assert set(names) == ({n for n in node_keep.read_names(settings) if n.startswith("node_")}
                          | set(textfile.NAMES) | set(node_keep.TEXTFILE_COLLECTOR))
    committed = _node_job((REPO / "prometheus" / "prometheus.yml").read_text())["metric_relabel_configs"]
    assert committed == node_keep.metric_relabel_configs(settings)


def _binary(glob: str) -> Path:
    found = sorted(CACHE.glob(glob))
    if not found:
        pytest.skip(f"{glob} is not under {CACHE} (run `llmobs setup`)")
    return found[0]


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def _by_job(url: str, expr: str) -> dict[str, int]:
    return {r["metric"]["job"]: int(float(r["value"][1])) for r in _query(url, expr)}


def _stored(url: str, job: str) -> dict[str, int]:
    return {r["metric"]["__name__"]: int(r["value"][1])
            for r in _query(url, f'count by (__name__) ({{job="{job}"}})')}


def test_real_prometheus_stores_only_the_kept_series_of_a_real_node_exporter(tmp_path: Path, figure) -> None:
    """node_exporter with the GPU preflight's textfile, scraped by Prometheus 3.5 twice: by the generated node
    job, and by the same job with `node_keep: all`."""
    exporter_bin, prometheus_bin = _binary(NODE_EXPORTER_GLOB), _binary(PROMETHEUS_GLOB)
    textfiles = tmp_path / "textfile_collector"
    textfiles.mkdir()
    (textfiles / textfile.FILE_NAME).write_text(textfile.render(REPORT))
    node_port, prometheus_port = free_ports(2)
    hosts = [{"name": "gpu-01", "address": "127.0.0.1", "exporters": {"node": {"port": node_port}}}]
    fast = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s", "job_intervals": {},
            "rule_files": []}
    settings = load_settings()
    files = scrape.render(hosts, settings, fast)
    config = yaml.safe_load(files["prometheus.yml"])
    every = _node_job(scrape.render(hosts, settings, {**fast, "node_keep": "all"})["prometheus.yml"])
    config["scrape_configs"] = [_node_job(files["prometheus.yml"]), {**every, "job_name": "node_all"}]
    files["prometheus.yml"] = yaml.safe_dump(config)
    _promtool_check(tmp_path, files)
    exporter = subprocess.Popen([str(exporter_bin), f"--web.listen-address=127.0.0.1:{node_port}",
                                 f"--collector.textfile.directory={textfiles}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    prometheus = subprocess.Popen([str(prometheus_bin), f"--config.file={tmp_path / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp_path / 'data'}",
                                   f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{prometheus_port}"
    try:
        wait_until_ready(f"http://127.0.0.1:{node_port}/metrics", exporter, "node_exporter")
        page = requests.get(f"http://127.0.0.1:{node_port}/metrics", timeout=10).text
        wait_until_ready(f"{url}/-/ready", prometheus, "Prometheus", attempts=300)
        for _ in range(200):
            if len(_query(url, "scrape_samples_post_metric_relabeling")) == 2:
                break
            time.sleep(0.1)
        scraped, stored = _by_job(url, "scrape_samples_scraped"), _by_job(url, "scrape_samples_post_metric_relabeling")
        counts = {job: (scraped[job], stored[job]) for job in ("node", "node_all")}
        kept, everything = _stored(url, "node"), _stored(url, "node_all")
    finally:
        for process in (prometheus, exporter):
            process.terminate()
            process.wait(timeout=30)
    served, after = counts["node"]
    figure(f"node_exporter page: {served} series served, {after} stored by the node job "
           f"({len(kept) - len(TARGET_SERIES)} names kept of {len(everything) - len(TARGET_SERIES)})")
    assert counts["node_all"] == (served, served) and after < served / 5, counts
    served_names = set(everything) - TARGET_SERIES
    assert set(textfile.NAMES) | {"node_textfile_mtime_seconds", "node_cpu_seconds_total"} <= served_names
    # Stored: exactly the kept names that node_exporter serves, as many series of each as it serves.
    assert set(kept) - TARGET_SERIES == served_names & set(node_keep.kept_names(settings))
    assert all(kept[name] == everything[name] for name in kept)
    # The fleet benchmark's page counts what this Prometheus stored (same keep-list, applied to the text).
    bench_page = relabeled(page, node_keep.metric_relabel_configs(settings))
    assert sum(1 for line in bench_page.splitlines() if line and line[0] != "#") == after
