"""Verdicts of the preflight checks: for each recorded host, and for the failure modes around them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from gpu_recordings import FIXTURES, HOSTS, expected, probe, settings

from llmobs.errors import ConfigError
from llmobs.preflight import CHECKS, judge, plan


def verdicts(host_probe: dict[str, Any], **overrides: Any) -> dict[str, str]:
    return judge(host_probe, plan(settings(**overrides)))["verdicts"]


def detail(report: dict[str, Any], check: str) -> dict[str, str]:
    return next(c for c in report["checks"] if c["name"] == check)


@pytest.mark.parametrize("host", HOSTS)
def test_each_recorded_host_gets_its_expected_verdicts(host: str) -> None:
    wanted = expected(host)
    report = judge(probe(host), plan(settings(**wanted["vars"])), host)
    assert report["verdicts"] == wanted["verdicts"]
    assert report["failed"] == [name for name, verdict in wanted["verdicts"].items() if verdict == "FAIL"]
    assert report["lines"][1].split() == ["CHECK", "VERDICT", "DETAIL"]
    for check in report["checks"]:
        if check["verdict"] == "FAIL":
            assert check["fix"], f"{check['name']} fails without saying how to fix it"


def test_warn_policy_turns_failures_into_warnings_and_skip_turns_checks_off() -> None:
    host = probe("a100-sxm4-hgx")
    assert verdicts(host, gpu_preflight_on_failure="warn")["persistence_mode"] == "WARN"
    per_check = judge(host, plan(settings(gpu_preflight_check_actions={"persistence_mode": "skip"})))
    assert per_check["verdicts"]["persistence_mode"] == "SKIP" and per_check["failed"] == []
    strict = settings(gpu_preflight_on_failure="warn", gpu_preflight_check_actions={"persistence_mode": "fail"})
    assert judge(host, plan(strict))["failed"] == ["persistence_mode"]


def test_expected_count_and_model_mismatch_fail() -> None:
    host = probe("h100-sxm-hgx")
    found = verdicts(host, gpu_preflight_expected_gpu_count=4, gpu_preflight_expected_model="A100-SXM")
    assert (found["gpu_count"], found["gpu_model"]) == ("FAIL", "FAIL")
    unset = verdicts(host)
    assert (unset["gpu_count"], unset["gpu_model"]) == ("SKIP", "SKIP")


def test_driver_older_than_the_minimum_fails() -> None:
    report = judge(probe("rtx4090-x8"), plan(settings(gpu_preflight_min_driver_version="550.54.15")))
    check = detail(report, "driver_version")
    assert check["verdict"] == "FAIL" and "535.154.05 is older than" in check["detail"]


def test_kernel_module_that_differs_from_the_user_space_driver_fails() -> None:
    host = probe("h100-sxm-hgx")
    host["driver_version_file"] = host["driver_version_file"].replace("535.183.01", "535.161.08")
    report = judge(host, plan(settings()))
    assert detail(report, "kernel_module")["verdict"] == "FAIL"
    assert "reboot" in detail(report, "kernel_module")["fix"]


def test_pending_row_remap_recorded_on_an_a10_fails_memory_health() -> None:
    host = probe("h100-sxm-hgx")
    a10 = (FIXTURES / "extra" / "a10-remap-pending-q.txt").read_text()
    host["nvidia_smi_q"]["stdout"] = a10
    check = detail(judge(host, plan(settings())), "memory_health")
    assert check["verdict"] == "FAIL"
    assert "00000000:07:00.0: row remap pending (4 uncorrectable rows)" in check["detail"]
    assert "nvidia-smi -r" in check["fix"]


def test_retired_pages_over_the_limit_and_pending_retirement_fail() -> None:
    host = probe("h100-sxm-hgx")
    q = host["nvidia_smi_q"]["stdout"]
    # A GPU that retires pages (pre-Hopper style) on the first section only.
    first_end = q.index("GPU 00000000:64:00.0")
    section = q[:first_end]
    for key, value in (("Single Bit ECC", "9"), ("Double Bit ECC", "3"), ("Pending Page Blacklist", "Yes")):
        section = section.replace(f"{key:<34}: N/A", f"{key:<34}: {value}")
    host["nvidia_smi_q"]["stdout"] = section + q[first_end:]
    check = detail(judge(host, plan(settings())), "memory_health")
    assert check["verdict"] == "FAIL"
    assert "12 retired pages > gpu_preflight_max_retired_pages 10" in check["detail"]
    assert "page retirement pending" in check["detail"]
    relaxed = detail(judge(host, plan(settings(gpu_preflight_max_retired_pages=20))), "memory_health")
    assert "retired pages >" not in relaxed["detail"]


def test_fabric_registration_in_progress_fails_even_with_the_fabric_manager_running() -> None:
    host = probe("h100-sxm-hgx")
    host["nvidia_smi_q"]["stdout"] = host["nvidia_smi_q"]["stdout"].replace(
        "State                             : Completed\n        Status                            : Success",
        "State                             : In Progress\n        Status                            : N/A")
    check = detail(judge(host, plan(settings())), "fabric_manager")
    assert check["verdict"] == "FAIL" and "In Progress/N/A" in check["detail"]


def test_nvswitch_detection_without_lspci() -> None:
    a100 = probe("a100-sxm4-hgx")
    a100["lspci"] = {"found": False}
    check = detail(judge(a100, plan(settings())), "fabric_manager")
    assert check["verdict"] == "WARN" and "pciutils" in check["fix"]
    assert verdicts(a100, gpu_preflight_nvswitch="present")["fabric_manager"] == "PASS"
    assert verdicts(a100, gpu_preflight_nvswitch="absent")["fabric_manager"] == "SKIP"
    rtx = probe("rtx4090-x8")
    rtx["lspci"] = {"found": False}
    assert verdicts(rtx)["fabric_manager"] == "SKIP"  # GeForce cards have no NVSwitch to miss


def test_container_toolkit_missing_or_docker_down() -> None:
    host = probe("h100-sxm-hgx")
    missing = copy.deepcopy(host)
    missing["nvidia_ctk_version"] = {"found": False}
    assert "not installed" in detail(judge(missing, plan(settings())), "container_toolkit")["detail"]
    down = copy.deepcopy(host)
    down["docker_info"] = {
        "found": True, "rc": 1,
        "stdout": (FIXTURES / "extra" / "docker-info-daemon-down.json").read_text(),
        "stderr": (FIXTURES / "extra" / "docker-info-daemon-down.stderr").read_text(),
    }
    check = detail(judge(down, plan(settings())), "container_toolkit")
    assert check["verdict"] == "FAIL" and "Cannot connect to the Docker daemon" in check["detail"]
    cdi_off = probe("a100-sxm4-hgx")
    cdi_off["docker_info"]["stdout"] = (FIXTURES / "rtx4090-x8" / "docker-info.json").read_text()
    assert "CDI turned off" in detail(judge(cdi_off, plan(settings())), "container_toolkit")["detail"]


def test_nvidia_smi_missing() -> None:
    host = probe("h100-sxm-hgx")
    host["nvidia_smi_query"] = host["nvidia_smi_q"] = {"found": False}
    check = detail(judge(host, plan(settings())), "nvidia_smi")
    assert check["verdict"] == "FAIL" and "gpu_preflight_nvidia_smi_path" in check["fix"]


@pytest.mark.parametrize(("overrides", "variable", "hint"), [
    ({"gpu_preflight_expected_model": "H200"}, "gpu_preflight_expected_model", "A100-SXM"),
    ({"gpu_preflight_check_actions": {"persistance_mode": "warn"}}, "gpu_preflight_check_actions.persistance_mode",
     "persistence_mode"),
    ({"gpu_preflight_check_actions": {"ecc": "ignore"}}, "gpu_preflight_check_actions.ecc", "'skip'"),
    ({"gpu_preflight_min_driver_version": "R535"}, "gpu_preflight_min_driver_version", "pattern"),
    ({"gpu_preflight_on_failure": "stop"}, "gpu_preflight_on_failure", "'warn'"),
    ({"gpu_preflight_expected_gpu_count": -1}, "gpu_preflight_expected_gpu_count", "greater than or equal"),
])
def test_bad_settings_name_the_variable_and_the_fix(overrides: dict[str, Any], variable: str, hint: str) -> None:
    with pytest.raises(ConfigError) as raised:
        plan(settings(**overrides))
    assert str(raised.value).startswith(f"gpu_preflight: {variable}")
    assert hint in str(raised.value)


def test_plan_carries_the_query_the_probe_must_run() -> None:
    preflight = plan(settings())
    assert preflight["query_fields"][:2] == ["index", "pci.bus_id"]
    assert preflight["query_format"] == "csv,noheader,nounits"
    assert set(CHECKS) >= {"fabric_manager", "container_toolkit"}
