"""Recorded GPU hosts (tests/fixtures/nvidia-smi) and how to probe them through the stand-ins."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from llmobs.preflight import QUERY_FIELDS, QUERY_FORMAT

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "nvidia-smi"
STAND_INS = FIXTURES / "bin"
HOSTS = ("h100-sxm-hgx", "a100-sxm4-hgx", "rtx4090-x8", "driver-not-loaded")
ROLE_DEFAULTS = yaml.safe_load((REPO / "roles" / "gpu_preflight" / "defaults" / "main.yml").read_text())
SETTING_NAMES = (
    "gpu_preflight_min_driver_version", "gpu_preflight_expected_gpu_count", "gpu_preflight_expected_model",
    "gpu_preflight_max_retired_pages", "gpu_preflight_nvswitch", "gpu_preflight_on_failure",
    "gpu_preflight_check_actions",
)


def expected(host: str) -> dict[str, Any]:
    return yaml.safe_load((FIXTURES / host / "expected.yml").read_text())


def settings(**overrides: Any) -> dict[str, Any]:
    """The role's default settings with overrides, as the role hands them to the filter."""
    return {**{name: ROLE_DEFAULTS[name] for name in SETTING_NAMES}, **overrides}


def probe(host: str) -> dict[str, Any]:
    """What the probe module returns on the recorded host, collected through the same stand-ins."""
    root = FIXTURES / host
    env = {**os.environ, "PATH": f"{STAND_INS}:{os.environ['PATH']}", "LLMOBS_GPU_FIXTURE": str(root)}

    def run(*args: str) -> dict[str, Any]:
        done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
        return {"found": True, "rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}

    def read(path: Path) -> str | None:
        return path.read_text() if path.exists() else None

    return {
        "query_fields": list(QUERY_FIELDS),
        "nvidia_smi_query": run("nvidia-smi", "--query-gpu=" + ",".join(QUERY_FIELDS), "--format=" + QUERY_FORMAT),
        "nvidia_smi_q": run("nvidia-smi", "-q"),
        "driver_version_file": read(root / "proc" / "driver" / "nvidia" / "version"),
        "proc_modules": read(root / "proc" / "modules"),
        "lspci": run("lspci", "-Dnn", "-d", "10de:"),
        "nvidia_ctk_version": run("nvidia-ctk", "--version"),
        "nvidia_ctk_cdi_list": run("nvidia-ctk", "cdi", "list"),
        "docker_info": run("docker", "info", "--format", "{{json .}}"),
        "fabricmanager_pids": sorted(int(p.name) for p in (root / "proc").iterdir() if p.name.isdigit()),
    }

