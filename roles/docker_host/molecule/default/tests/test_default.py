"""The docker_host role on a container without an init system: Docker and Compose v2 present, dockerd
running, the NVIDIA runtime merged into the operator's daemon.json and loaded by the daemon, and a later
option change restarting dockerd (side_effect.yml)."""

import json
import os

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")


def test_docker_engine_is_installed_from_the_distribution(host):
    assert host.package("docker.io").is_installed


def test_dockerd_runs_and_answers(host):
    pid = host.file("/var/run/docker.pid").content_string.strip()
    assert host.file(f"/proc/{pid}").exists
    assert host.check_output("docker version --format '{{.Server.Version}}'")


def test_compose_v2_is_a_docker_cli_plugin(host):
    plugin = host.file("/usr/local/lib/docker/cli-plugins/docker-compose")
    assert plugin.is_file and plugin.mode == 0o755
    assert host.check_output("docker compose version --short").startswith("2.")


def test_daemon_json_keeps_the_operators_keys_and_adds_the_nvidia_runtime(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["log-driver"] == "json-file"
    assert config["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert config["runtimes"]["nvidia"] == {"args": [], "path": "nvidia-container-runtime"}


def test_a_changed_option_restarted_dockerd_and_was_loaded(host):
    before = host.file("/tmp/dockerd-pid-before-side-effect").content_string.strip()
    after = host.file("/var/run/docker.pid").content_string.strip()
    assert before != after
    assert json.loads(host.file("/etc/docker/daemon.json").content_string)["labels"] == ["llmobs.molecule=side-effect"]
    assert "llmobs.molecule=side-effect" in host.check_output("docker info --format '{{json .Labels}}'")


def test_the_running_daemon_loaded_the_nvidia_runtime(host):
    runtimes = json.loads(host.check_output("docker info --format '{{json .Runtimes}}'"))
    assert runtimes["nvidia"]["path"] == "nvidia-container-runtime"
    assert host.check_output("docker info --format '{{.LoggingDriver}}'") == "json-file"
