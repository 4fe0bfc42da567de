"""The Prometheus configuration and file_sd targets generator (llmobs.scrape), checked by the real promtool,
and the lab's other generated files (its GPU servers' Compose services)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from llmobs import scrape
from llmobs.errors import ConfigError
from llmobs.lab.prometheus import render_lab_prometheus
from llmobs.lab.services import lab_gpu_services
from llmobs.settings import load_settings, load_settings_file
from llmobs.sim.topology import load_topology
from llmobs.workspace import Workspace

from .conftest import REPO

FLEET_ENDPOINTS = {"gpu-01": [{"model": "llama", "port": 8000, "gpus": [0, 1, 2, 3], "address": "10.0.0.11"},
                              {"model": "qwen", "port": 8001, "gpus": [4], "address": "10.0.0.11"}],
                   "gpu-02": [{"model": "llama", "gpus": [0, 1, 2, 3]}]}
FLEET = [
    {"name": "mon-1", "address": "10.0.0.2",
     "exporters": {"node": None, "prometheus": {"address": "localhost"}, "alertmanager": {}, "grafana": {}}},
    {"name": "gpu-01", "address": "10.0.0.11", "exporters": ["node", "dcgm"], "labels": {"rack": "r1"}},
    {"name": "gpu-02", "exporters": {"node": {"port": 19100}, "dcgm": {}}},
]
OPTIONS = {
    "external_labels": {"site": "eu-1", "replica": "a"},
    "alertmanagers": ["10.0.0.2:9093", "10.0.0.3:9093"],
    "remote_write": [{"url": "https://mimir.example/api/v1/push",
                      "basic_auth": {"username": "prom", "password_file": "/etc/prometheus/secrets/mimir"},
                      "queue_config": {"max_samples_per_send": 2000}}],
}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian's prometheus package; `llmobs setup`)")
    return path


def _write(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (root / "rules").mkdir(exist_ok=True)
    return root / "prometheus.yml"


def test_fleet_config_passes_promtool_and_labels_every_target(tmp_path: Path) -> None:
    settings = load_settings({"vllm_endpoints": FLEET_ENDPOINTS, "labels": {"host": "node_name"}})
    files = scrape.render(FLEET, settings, OPTIONS)
    config = _write(tmp_path, files)
    done = subprocess.run([_promtool(), "check", "config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    targets = {job: yaml.safe_load(files[f"targets/{job}.yml"]) for job in scrape.JOB_ORDER}
    assert targets["dcgm"] == [
        {"targets": ["10.0.0.11:9400"], "labels": {"node_name": "gpu-01", "rack": "r1"}},
        {"targets": ["gpu-02:9400"], "labels": {"node_name": "gpu-02"}}]
    assert [t["targets"][0] for t in targets["node"]] == ["10.0.0.2:9100", "10.0.0.11:9100", "gpu-02:19100"]
    assert [t["targets"][0] for t in targets["vllm"]] == ["10.0.0.11:8000", "10.0.0.11:8001", "gpu-02:8000"]
    assert all(t["labels"]["node_name"] for job in targets.values() for t in job)
    prometheus = yaml.safe_load(files["prometheus.yml"])
    assert prometheus["global"]["external_labels"] == {"site": "eu-1", "replica": "a"}
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == OPTIONS["alertmanagers"]
    assert prometheus["remote_write"][0]["queue_config"] == {"max_samples_per_send": 2000}
    intervals = {c["job_name"]: c.get("scrape_interval") for c in prometheus["scrape_configs"]}
    assert intervals == {"prometheus": None, "alertmanager": None, "grafana": None, "node": None,
                         "dcgm": "10s", "vllm": "10s", "sglang": "10s", "trtllm": "10s", "llamacpp": "10s",
                         "prober": None, "otelcol": None}


def test_each_engine_has_its_job_path_and_model(tmp_path: Path) -> None:
    """A mixed host: each engine scraped by its own job, TensorRT-LLM at /prometheus/metrics, and the
    inventory's model as a target label where the engine's series do not name it."""
    settings = load_settings({
        "vllm_endpoints": {"gpu-01": [{"model": "llama-70b", "gpus": [0, 1, 2, 3]}]},
        "endpoints": {"gpu-01": [{"engine": "sglang", "model": "qwen-32b", "gpus": [4, 5]},
                                 {"engine": "trtllm", "model": "mistral-7b", "port": 8001, "gpus": [6]},
                                 {"engine": "llamacpp", "model": "tiny", "gpus": [7]}]}})
    files = scrape.render([{"name": "gpu-01", "exporters": ["node", "dcgm"]}], settings)
    done = subprocess.run([_promtool(), "check", "config", str(_write(tmp_path, files))], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    targets = {job: yaml.safe_load(files[f"targets/{job}.yml"]) for job in ("vllm", "sglang", "trtllm", "llamacpp")}
    assert targets == {
        "vllm": [{"targets": ["gpu-01:8000"], "labels": {"host": "gpu-01"}}],
        "sglang": [{"targets": ["gpu-01:30000"], "labels": {"host": "gpu-01"}}],
        "trtllm": [{"targets": ["gpu-01:8001"], "labels": {"host": "gpu-01", "model_name": "mistral-7b"}}],
        "llamacpp": [{"targets": ["gpu-01:8080"], "labels": {"host": "gpu-01", "model_name": "tiny"}}]}
    paths = {c["job_name"]: c.get("metrics_path", "/metrics")
             for c in yaml.safe_load(files["prometheus.yml"])["scrape_configs"]}
    assert {job: paths[job] for job in targets} == {"vllm": "/metrics", "sglang": "/metrics",
                                                   "trtllm": "/prometheus/metrics", "llamacpp": "/metrics"}


def test_lab_output_is_committed_and_valid(tmp_path: Path) -> None:
    settings = load_settings_file(REPO / "compose" / "lab-settings.yml")
    files = render_lab_prometheus(settings, Workspace(REPO))
    for path, text in files.items():
        assert (REPO / path).read_text() == text, f"{path} differs from `llmobs generate`"
    topology = load_topology(REPO / "compose" / "lab-topology.yml")
    simulated = {host.name for host in topology.simulated()}
    assert {e.host for e in settings.vllm_endpoints} == simulated
    root = tmp_path / "prometheus"
    config = _write(root, {path.removeprefix("prometheus/"): text for path, text in files.items()})
    done = subprocess.run([_promtool(), "check", "config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # Optional services of the lab are found by name, so a missing Grafana is no down target.
    grafana = next(c for c in yaml.safe_load(files["prometheus/prometheus.yml"])["scrape_configs"]
                   if c["job_name"] == "grafana")
    assert grafana["dns_sd_configs"][0]["names"] == ["grafana"] and yaml.safe_load(
        files["prometheus/targets/grafana.yml"]) == []
    relabels = {(r["target_label"], r["replacement"]) for r in grafana["relabel_configs"]}
    assert relabels == {("instance", "grafana:3000"), ("host", "lab")}


@pytest.mark.parametrize(("hosts", "endpoints", "options", "field"), [
    ([{"name": "a"}, {"name": "a"}], {}, {}, "hosts[1].name"),
    ([{"name": "a", "exporters": ["node"]}, {"name": "b", "address": "a", "exporters": ["node"]}], {}, {},
     "hosts[1].exporters.node"),
    ([{"name": "a", "address": "10.0.0.1"}], {"a": [{"model": "m", "gpus": [0]}]}, {}, "vllm_endpoints[0].address"),
    ([{"name": "a", "exporters": ["gpu"]}], {}, {}, "hosts[0].exporters.gpu"),
    ([], {}, {"scrape_timeout": "30s"}, "prometheus"),
    ([], {}, {"job_intervals": {"dgcm": "5s"}}, "prometheus.job_intervals.dgcm"),
    ([], {}, {"remote_write": [{"url": "https://x/push", "basic_auth": {"username": "u", "password": "p"}}]},
     "prometheus.remote_write[0]"),
    ([], {}, {"remote_write": [{"url": "mimir:9009"}]}, "prometheus.remote_write[0].url"),
])
def test_bad_input_names_the_field(hosts, endpoints, options, field) -> None:
    settings = load_settings({"vllm_endpoints": endpoints})
    with pytest.raises(ConfigError) as error:
        scrape.render(hosts, settings, options)
    fields = [e.field for e in getattr(error.value, "errors", [error.value])]
    assert any(f == field or f.startswith(f"{field}.") for f in fields), fields


def test_lab_gpu_servers_are_the_simulated_hosts_of_the_topology() -> None:
    files = lab_gpu_services(load_settings_file(REPO / "compose" / "lab-settings.yml"), Workspace(REPO))
    simulated = [host.name for host in load_topology(REPO / "compose" / "lab-topology.yml").simulated()]
    assert set(files) == {f"compose/services/{name}.yaml" for name in simulated}
    for name in simulated:
        definition = yaml.safe_load(files[f"compose/services/{name}.yaml"])
        assert definition["services"][name]["hostname"] == name
        assert definition["services"][name]["command"] == ["sim", "host", "--host", name]
    assert "on GPUs 0,1,2,3 (port 8000)" in files["compose/services/gpu-h100-1.yaml"]
    assert "(port 8000, vLLM 0.10.2)" in files["compose/services/gpu-t4-1.yaml"], "a release other than the current"
    assert "4 x A100-SXM, dcgm-exporter 4.5.3-4.8.2," in files["compose/services/gpu-a100-1.yaml"]
    assert "dcgm-exporter" not in files["compose/services/gpu-h100-1.yaml"].splitlines()[0], "the pin goes unsaid"
