"""The prometheus role's result, checked from inside the monitoring "server"."""

import json
import time

from llmobs import rules
from llmobs.settings import load_settings

PROMETHEUS = "http://prometheus:9090"
CREDENTIALS = "admin:molecule-prometheus-password"
PROJECT_DIR = "/tmp/llmobs-mol-prometheus/llmobs-mol-prometheus/prometheus"
CONTAINER = "llmobs-mol-prometheus-prometheus-prometheus-1"


def get(host, path):
    return json.loads(host.check_output(f"curl -sf -u {CREDENTIALS} {PROMETHEUS}{path}"))


def test_api_needs_the_basic_auth_password(host):
    assert host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {PROMETHEUS}/api/v1/targets") == "401"
    web = host.file(f"{PROJECT_DIR}/config/web.yml")
    assert web.mode == 0o640 and "$2b$" in web.content_string
    assert "molecule-prometheus-password" not in web.content_string


def test_container_runs_as_non_root(host):
    container = host.docker(CONTAINER)
    assert container.is_running
    assert host.check_output(f"docker exec {CONTAINER} id -u") != "0"


def test_live_configuration_is_valid(host):
    result = host.run(f"docker exec {CONTAINER} promtool check config /etc/prometheus/prometheus.yml")
    assert result.rc == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_rejected_configuration_never_reached_prometheus(host):
    """The side effect's remote_write failed promtool: neither the live files nor the running config have it."""
    assert "remote_write" not in host.file(f"{PROJECT_DIR}/config/prometheus.yml").content_string
    assert "remote_write" not in get(host, "/api/v1/status/config")["data"]["yaml"]


def test_lifecycle_reload_is_enabled(host):
    flags = get(host, "/api/v1/status/flags")["data"]
    assert flags["web.enable-lifecycle"] == "true"


def test_every_generated_rule_is_loaded(host):
    groups = get(host, "/api/v1/rules")["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "alerting"}
    assert loaded == {alert.alert for alert in rules.alert_list(load_settings({}))}
    # A group without rules (no engines, no prices in the default settings) is not written, so not loaded.
    expected_groups = {group.name for file in rules.rule_files(load_settings({})).values() for group in file.groups
                       if group.rules}
    assert {group["name"] for group in groups} == expected_groups
    assert all(group["file"].startswith("/etc/prometheus/rules/") for group in groups)


def test_files_readable_by_the_container_user_only_where_needed(host):
    assert host.file(f"{PROJECT_DIR}/config/prometheus.yml").mode == 0o644
    assert "molecule-prometheus-password" not in host.file(f"{PROJECT_DIR}/config/prometheus.yml").content_string
    password = host.file(f"{PROJECT_DIR}/config/secrets/scrape-prometheus-password")
    assert password.mode == 0o640 and password.group == "nogroup"
    assert host.file(f"{PROJECT_DIR}/.env").mode == 0o600


def test_own_target_is_up(host):
    deadline = time.monotonic() + 60
    while True:
        targets = get(host, "/api/v1/targets")["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        if health.get("prometheus") == "up" or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert health.get("prometheus") == "up", targets
    own = next(t for t in targets if t["labels"]["job"] == "prometheus")
    assert own["labels"]["host"] == "llmobs-mol-prometheus"
