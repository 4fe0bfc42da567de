"""The grafana role's result, checked from inside the monitoring "server".

Where no registry serves Grafana's image (GRAFANA_IMAGE unset by `llmobs setup`), the role writes and
checks everything but does not start Grafana; the tests that need a running Grafana skip, saying so.
"""

import json
import os

import pytest
import yaml

PROJECT_DIR = "/tmp/llmobs-mol-grafana/llmobs-mol-grafana/grafana"
CONTAINER = "llmobs-mol-grafana-grafana-grafana-1"
GRAFANA = "http://grafana:3000"
PASSWORD = "molecule-grafana-only-password"
IMAGE = os.environ.get("GRAFANA_IMAGE")
needs_grafana = pytest.mark.skipif(
    not IMAGE, reason="Grafana's image is not on this machine and no registry answers (llmobs setup found none)")


def test_dashboards_are_provisioned_from_the_generator(host):
    files = host.file(f"{PROJECT_DIR}/config/dashboards").listdir()
    assert sorted(files) == sorted(
        ["llmobs-efficiency.json", "llmobs-fleet.json", "llmobs-gpu-node.json", "llmobs-slo.json", "llmobs-vllm.json"])
    for name in files:
        dashboard = json.loads(host.file(f"{PROJECT_DIR}/config/dashboards/{name}").content_string)
        assert dashboard["uid"] and dashboard["panels"]


def test_datasources_point_at_the_hosts_own_services(host):
    document = yaml.safe_load(host.file(f"{PROJECT_DIR}/config/provisioning/datasources/llmobs.yaml").content_string)
    urls = {source["type"]: source["url"] for source in document["datasources"]}
    assert urls == {"prometheus": "http://prometheus:9090", "alertmanager": "http://alertmanager:9093"}
    provider = yaml.safe_load(host.file(f"{PROJECT_DIR}/config/provisioning/dashboards/llmobs.yaml").content_string)
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"


def test_admin_password_is_kept_out_of_world_readable_files(host):
    env = host.file(f"{PROJECT_DIR}/.env")
    assert env.mode == 0o600
    for path in ("grafana.yaml", "llmobs.override.yaml"):
        assert PASSWORD not in host.file(f"{PROJECT_DIR}/{path}").content_string


@pytest.mark.skipif(bool(IMAGE), reason="Grafana's image is present: Grafana runs")
def test_without_its_image_grafana_is_not_started(host):
    assert not host.docker.get_containers(name=CONTAINER)


@needs_grafana
def test_grafana_answers_and_refuses_anonymous_access(host):
    assert host.docker(CONTAINER).is_running
    assert json.loads(host.check_output(f"curl -sf {GRAFANA}/api/health"))["database"] == "ok"
    assert host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {GRAFANA}/api/search") == "401"


@needs_grafana
def test_dashboards_and_datasources_load(host):
    search = json.loads(host.check_output(f"curl -sf -u admin:{PASSWORD} '{GRAFANA}/api/search?type=dash-db'"))
    assert {d["uid"] for d in search} >= {"llmobs-fleet", "llmobs-vllm", "llmobs-gpu-node", "llmobs-slo"}
    sources = json.loads(host.check_output(f"curl -sf -u admin:{PASSWORD} {GRAFANA}/api/datasources"))
    assert {s["uid"] for s in sources} == {"prometheus", "alertmanager"}
