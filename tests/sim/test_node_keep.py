"""The node job's keep-list (llmobs.node_keep): Prometheus stores the node_exporter series the kit's rules and
dashboards read, and nothing else unless the site asks. Checked against the committed rules and dashboards,
with promtool, and with the real Prometheus scraping the real node_exporter (both from `llmobs setup`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import promql_parser
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


# promql_parser's match operators (not hashable) as PromQL writes them.
OPS = ((promql_parser.MatchOp.Equal, "="), (promql_parser.MatchOp.NotEqual, "!="), (promql_parser.MatchOp.Re, "=~"),
       (promql_parser.MatchOp.NotRe, "!~"))
GRAFANA_VARIABLE = "__variable__"


def _committed_selectors() -> list[tuple[str, tuple[promql.Matcher, ...]]]:
    """(name, matchers) of every selector of a node_exporter series in the committed rules and dashboards,
    without the matchers on target labels or Grafana variables (whatever host a user picks)."""
    exprs = []
    for path in sorted((REPO / "prometheus" / "rules").glob("*.yml")):
        exprs += [rule["expr"] for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]
    for path in sorted((REPO / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        types = {v["name"]: v.get("type", "") for v in dashboard["templating"]["list"]}
        exprs += [substitute_variables(query.expr, types, GRAFANA_VARIABLE)
                  for query in [*(q for _, q in dashboard_queries(dashboard)), *variable_queries(dashboard)]
                  if query.expr]
    found = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name and _served_by_node_exporter(node.name):
            matchers = [promql.Matcher(m.name, next(text for op, text in OPS if op == m.op), m.value)
                        for m in node.matchers.matchers]
            found.append((node.name, tuple(m for m in matchers if m.label not in {"host", "instance", "job"}
                                           and GRAFANA_VARIABLE not in m.value)))

    for expr in exprs:
        promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return sorted(set(found), key=str)


def _examples(name: str, matchers: tuple[promql.Matcher, ...]) -> list[dict[str, str]]:
    """Series the selector selects: each fixed value, each alternative of a regex of literals (`/|/models`)."""
    series = [{"__name__": name}]
    for matcher in matchers:
        if matcher.op in ("=", "=~"):
            values = ([matcher.value] if matcher.op == "=" else
                      [re.sub(r"\\(.)", r"\1", value) for value in matcher.value.split("|")])
            series = [{**s, matcher.label: value} for s in series for value in values]
    return series


def test_every_node_series_the_committed_rules_and_dashboards_read_is_kept() -> None:
    selectors = _committed_selectors()
    read = {name for name, _ in selectors}
    # The alerts' filesystems, the GPU page's CPU and memory panels, the preflight alerts.
    assert {"node_cpu_seconds_total", "node_filesystem_avail_bytes", "node_memory_MemTotal_bytes",
            "llmobs_gpu_preflight_driver_info"} <= read
    keep = _node_job((REPO / "prometheus" / "prometheus.yml").read_text())["metric_relabel_configs"]
    assert [rule["action"] for rule in keep] == ["keep"]
    dropped = [(name, series) for name, matchers in selectors for series in _examples(name, matchers)
               if not node_keep.keeps(keep, series)]
    assert not dropped
    # What nothing reads: other names, and the CPU modes and filesystems no query selects.
    for unread in ({"__name__": "node_network_receive_bytes_total", "device": "eth0"}, {"__name__": "node_load1"},
                   {"__name__": "node_scrape_collector_success", "collector": "cpu"}, {"__name__": "go_goroutines"},
                   {"__name__": "node_cpu_seconds_total", "cpu": "0", "mode": "user"},
                   {"__name__": "node_filesystem_avail_bytes", "mountpoint": "/run/user/1000"}):
        assert not node_keep.keeps(keep, unread), unread
    # What the gpu-host-stack runbook points to, and every series of the preflight's textfile.
    assert all(node_keep.keeps(keep, {"__name__": name, "file": "/x/llmobs_gpu_preflight.prom"})
               for name in (*textfile.NAMES, *node_keep.TEXTFILE_COLLECTOR))


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
    assert all(node_keep.keeps(relabel, {"__name__": name, "mode": "idle"}) for name in kept)
    assert not any(node_keep.keeps(relabel, {"__name__": name, "mode": "idle"}) for name in dropped)


def test_the_lab_keeps_what_its_settings_read() -> None:
    """The derivation, not a list: the committed lab config is what the lab settings' generators read."""
    settings = load_settings_file(REPO / "compose" / "lab-settings.yml")
    names = node_keep.kept_names(settings)
    assert set(names) == ({n for n in node_keep.read_selectors(settings) if n.startswith("node_")}
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


def _series(url: str, selector: str) -> set[tuple[tuple[str, str], ...]]:
    """Every series the selector returns now, without its job label."""
    return {tuple(sorted((k, v) for k, v in r["metric"].items() if k != "job")) for r in _query(url, selector)}


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
        kept, everything = _series(url, '{job="node"}'), _series(url, '{job="node_all"}')
        # Each selector of a node_exporter series in the committed rules and dashboards, over both jobs.
        answers = {(name, matchers): [_series(url, promql.selector(name, *matchers, promql.eq("job", job)))
                                      for job in ("node", "node_all")] for name, matchers in _committed_selectors()}
    finally:
        for process in (prometheus, exporter):
            process.terminate()
            process.wait(timeout=30)
    served, after = counts["node"]
    kept = {series for series in kept if dict(series)["__name__"] not in TARGET_SERIES}
    everything = {series for series in everything if dict(series)["__name__"] not in TARGET_SERIES}
    kept_names = {dict(series)["__name__"] for series in kept}
    figure(f"node_exporter page: {served} series served, {after} stored by the node job ({len(kept_names)} names "
           f"kept of {len({dict(series)['__name__'] for series in everything})})")
    # (Each job against itself: containers add and remove network interfaces between the two scrapes.)
    assert counts["node_all"][0] == counts["node_all"][1] and after == len(kept) < served / 5, counts
    # Every query reads from the keep-list what it reads from everything.
    assert all(mine == theirs for mine, theirs in answers.values()), answers
    answered = {name for (name, _), (mine, _) in answers.items() if mine}
    assert {"node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_filesystem_avail_bytes",
            "llmobs_gpu_preflight_driver_info"} <= answered
    assert set(textfile.NAMES) | {"node_textfile_mtime_seconds"} <= kept_names
    # Stored: exactly what node_keep.keeps says of every series node_exporter serves (what the benchmark applies).
    relabel = node_keep.metric_relabel_configs(settings)
    assert kept == {series for series in everything if node_keep.keeps(relabel, dict(series))}
    bench_page = relabeled(page, relabel)
    assert sum(1 for line in bench_page.splitlines() if line and line[0] != "#") == after
