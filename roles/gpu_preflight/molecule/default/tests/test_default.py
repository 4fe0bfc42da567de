"""gpu_preflight on instances that replay recorded hosts: the report it leaves on each host carries the
expected verdicts, and it ran the stand-in nvidia-smi from the PATH like the real one."""

import json
import os
from pathlib import Path

import testinfra.utils.ansible_runner
import yaml

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")

FIXTURES = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]).parent.parent / "tests" / "fixtures" / "nvidia-smi"
RECORDED = {"llmobs-mol-gpu-h100": "h100-sxm-hgx", "llmobs-mol-gpu-rtx": "rtx4090-x8"}
# The RTX instance sets container_toolkit to warn, so its recorded FAIL prints as WARN.
POLICY = {"llmobs-mol-gpu-rtx": {"container_toolkit": "WARN"}}


def report(host):
    return json.loads(host.file("/var/lib/llmobs/gpu-preflight.json").content_string)


def test_the_report_carries_the_recorded_hosts_verdicts(host):
    name = host.backend.get_hostname()
    expected = yaml.safe_load((FIXTURES / RECORDED[name] / "expected.yml").read_text())["verdicts"]
    assert report(host)["verdicts"] == {**expected, **POLICY.get(name, {})}
    assert report(host)["failed"] == []


def test_the_report_is_readable_by_all_and_owned_by_root(host):
    report_file = host.file("/var/lib/llmobs/gpu-preflight.json")
    assert report_file.user == "root" and report_file.mode == 0o644


def test_nvidia_smi_on_the_path_is_the_stand_in(host):
    assert host.check_output("command -v nvidia-smi") == "/usr/local/bin/nvidia-smi"
    assert "NVSMI LOG" in host.check_output("nvidia-smi -q")


def test_gpu_and_nvswitch_counts_are_reported_for_later_roles(host):
    name = host.backend.get_hostname()
    assert report(host)["gpu_count"] == 8
    assert report(host)["nvswitch_count"] == (4 if name == "llmobs-mol-gpu-h100" else 0)
