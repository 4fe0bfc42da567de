"""llmobs.deploy: what the roles' filters compute from inventory data, checked with the real promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from llmobs import deploy, node_keep
from llmobs.errors import ConfigError

MON1 = {"name": "mon-01", "address": "10.0.0.10", "gpu": False, "monitoring": True}
MON2 = {"name": "mon-02", "address": "10.0.0.11", "gpu": False, "monitoring": True}
GPU1 = {"name": "gpu-a01", "address": "10.0.1.11", "gpu": True, "monitoring": False,
        "vllm_endpoints": [{"model": "llama", "port": 8000, "gpus": [0, 1]}], "labels": {"rack": "a"}}


def targets(files: dict[str, str], job: str) -> dict[str, dict]:
    return {entry["targets"][0]: entry["labels"] for entry in yaml.safe_load(files[f"targets/{job}.yml"])}


def promtool_check(files: dict[str, str], directory: Path) -> subprocess.CompletedProcess:
    for relative, text in files.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(text)
    return subprocess.run(["promtool", "check", "config", str(directory / "prometheus.yml")], capture_output=True,
                          text=True, check=False)


def test_remote_hosts_are_scraped_at_their_address_with_their_labels() -> None:
    files = deploy.prometheus_files({}, [MON1, GPU1], "mon-01")
    assert targets(files, "dcgm") == {"10.0.1.11:9400": {"host": "gpu-a01", "rack": "a"}}
    assert targets(files, "node") == {"node-exporter:9100": {"host": "mon-01"}, "10.0.1.11:9100": {"host": "gpu-a01",
                                                                                                 "rack": "a"}}
    assert targets(files, "vllm") == {"10.0.1.11:8000": {"host": "gpu-a01", "rack": "a"}}
    inventory = files["rules/inventory.yml"]  # one rule per engine, one series per GPU (llmobs.rules.inventory)
    assert '"gpu", "1"' in inventory and "gpus: 0,1" in inventory and "instance: 10.0.1.11:8000" in inventory


def test_the_prometheus_host_reaches_its_own_services_by_name() -> None:
    single = {**GPU1, "name": "box", "monitoring": True}
    files = deploy.prometheus_files({}, [single], "box")
    assert set(targets(files, "dcgm")) == {"dcgm-exporter:9400"}
    assert set(targets(files, "alertmanager")) == {"alertmanager:9093"}
    assert set(targets(files, "prometheus")) == {"localhost:9090"}


def test_ports_exporters_and_grafana_follow_the_inventory() -> None:
    gpu = {**GPU1, "ports": {"node": 9101}, "addresses": {"dcgm": "10.9.9.9"}}
    simulated = {"name": "sim-1", "address": "sim-1", "gpu": True, "monitoring": False, "exporters": ["dcgm"]}
    files = deploy.prometheus_files({}, [{**MON1, "grafana": False}, gpu, simulated], "mon-01")
    assert set(targets(files, "node")) == {"node-exporter:9100", "10.0.1.11:9101"}
    assert set(targets(files, "dcgm")) == {"10.9.9.9:9400", "sim-1:9400"}
    assert targets(files, "grafana") == {}


def test_ha_pair_alerts_every_alertmanager_and_labels_remote_write_with_its_replica(tmp_path: Path) -> None:
    options = {"external_labels": {"site": "fra1"}, "replica": {"replica": "mon-01"},
               "remote_write": [{"url": "https://mimir.example/api/v1/push",
                                 "basic_auth": {"username": "fra1", "password_file": "/etc/prometheus/secrets/p"}}]}
    files = deploy.prometheus_files({}, [MON1, MON2, GPU1], "mon-01", options)
    config = yaml.safe_load(files["prometheus.yml"])
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093",
                                                                                      "10.0.0.11:9093"]
    assert config["global"]["external_labels"] == {"site": "fra1"}  # alerts leave without the replica
    assert config["remote_write"][0]["write_relabel_configs"][0] == {
        "action": "replace", "target_label": "replica", "replacement": "mon-01"}
    assert set(targets(files, "prometheus")) == {"localhost:9090", "10.0.0.11:9090"}
    if not shutil.which("promtool"):
        pytest.skip("promtool is not installed (run `llmobs setup`)")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "p").write_text("x")
    files["prometheus.yml"] = files["prometheus.yml"].replace("/etc/prometheus/secrets/p", str(tmp_path / "secrets/p"))
    result = promtool_check(files, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _node_relabel(files: dict[str, str]) -> list[dict]:
    node = next(job for job in yaml.safe_load(files["prometheus.yml"])["scrape_configs"] if job["job_name"] == "node")
    return node.get("metric_relabel_configs", [])


def test_the_node_job_keeps_what_the_site_settings_read_or_what_the_site_asks() -> None:
    settings = {"thresholds": {"disk_mountpoints": ["/", "/mnt/weights"]}}
    keep = _node_relabel(deploy.prometheus_files(settings, [MON1, GPU1], "mon-01"))
    assert node_keep.keeps(keep, {"__name__": "node_filesystem_avail_bytes", "mountpoint": "/mnt/weights"})
    assert not node_keep.keeps(keep, {"__name__": "node_filesystem_avail_bytes", "mountpoint": "/models"})
    assert not node_keep.keeps(keep, {"__name__": "node_load1"})
    extra = _node_relabel(deploy.prometheus_files({}, [MON1, GPU1], "mon-01", {"node_keep_extra": ["node_load1"]}))
    assert node_keep.keeps(extra, {"__name__": "node_load1"})
    assert _node_relabel(deploy.prometheus_files({}, [MON1, GPU1], "mon-01", {"node_keep": "all"})) == []


@pytest.mark.parametrize(("hosts", "options", "field"), [
    ([MON1, {**GPU1, "address": ""}], {}, "gpu-a01: llmobs_scrape_address"),
    ([MON1, {**GPU1, "ports": {"node": "x"}}], {}, "gpu-a01: node_exporter_port"),
    ([MON1, {**GPU1, "exporters": ["vllm"]}], {}, "gpu-a01: llmobs_exporters"),
    ([MON1, {**GPU1, "vllm_endpoints": [{"model": "llama", "gpus": []}]}], {}, "gpu-a01: vllm_endpoints[0].gpus"),
    ([MON1, GPU1], {"remote_write": [{"url": "mimir:9009"}]}, "prometheus_remote_write[0].url"),
    ([MON1, GPU1], {"remote_write": [{"url": "https://m/push", "basic_auth": {"password": "s"}}]},
     "prometheus_remote_write[0]"),
    ([MON1, GPU1], {"scrape": {"scrape_interval": "often"}}, "prometheus_scrape_options.scrape_interval"),
    ([MON1, GPU1], {"node_keep": "everything"}, "prometheus_node_keep: Input should be 'read' or 'all'"),
    ([MON1, GPU1], {"node_keep_extra": ["node_(load"]},
     "prometheus_node_keep_extra[0]: Value error, 'node_(load' is not a regular expression"),
    ([MON1, GPU1], {"node_keep_extra": ['node_load1"}']}, "prometheus_node_keep_extra[0]: String should match"),
])
def test_bad_inventory_data_names_the_variable(hosts: list, options: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        deploy.prometheus_files({}, hosts, "mon-01", options)
    assert field in str(error.value)


def test_alertmanager_secrets_are_required_and_never_shown() -> None:
    settings = {"alertmanager": {"receivers": {"default": [{"kind": "slack", "channel": "#x",
                                                            "api_url_secret": "SLACK_API_URL"}]}}}
    with pytest.raises(ConfigError, match="add SLACK_API_URL to alertmanager_secrets"):
        deploy.alertmanager_files(settings, {})
    secret = "https://hooks.slack.com/services/T/B/very-secret"
    files = deploy.alertmanager_files(settings, {"SLACK_API_URL": secret})
    assert secret in files["alertmanager.yml"] and "templates/llmobs.tmpl" in files
    summary = deploy.alertmanager_check(settings, {"SLACK_API_URL": secret})
    assert secret not in str(summary) and summary["receivers"] == {"default": ["slack"]}


def test_compose_override_removes_keys_with_reset() -> None:
    text = deploy.compose_override({"services": {"dcgm-exporter": {"network_mode": "host"}}},
                                   ["services.dcgm-exporter.deploy", "services.dcgm-exporter.ports"])
    assert "deploy: !reset" in text and "ports: !reset" in text and "network_mode: host" in text


def test_image_pins_come_from_the_compose_service_files() -> None:
    services = Path(__file__).resolve().parents[2] / "compose" / "services"
    assert deploy.image_pin(str(services / "prometheus.yaml"), "PROMETHEUS_IMAGE").startswith("prom/prometheus:v")
    with pytest.raises(ConfigError, match="NO_SUCH_IMAGE"):
        deploy.image_pin(str(services / "prometheus.yaml"), "NO_SUCH_IMAGE")


@pytest.mark.parametrize(("listen", "host", "expected"), [
    ("0.0.0.0", "10.0.0.10", "10.0.0.10"), ("::", "mon-01.example.net", "mon-01.example.net"),
    ("127.0.0.1", "10.0.0.10", "localhost"), ("10.0.0.12", "10.0.0.10", "10.0.0.12"), ("::", "fd00::10", "[fd00::10]"),
])
def test_external_urls_name_the_address_users_reach(listen: str, host: str, expected: str) -> None:
    """Prometheus' and Alertmanager's external URLs (the alerts' generatorURL, the silence links) never
    name a container id or a wildcard address."""
    assert deploy.reached_at(listen, host) == expected
