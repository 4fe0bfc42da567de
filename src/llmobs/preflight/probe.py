"""Collect a GPU host's NVIDIA stack state on the host itself, for the preflight's timer (llmobs.preflight.host):
the same read-only commands and procfs reads as the role's probe module (roles/gpu_preflight/library/
gpu_preflight_probe.py, which runs them through Ansible), with the standard library only."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from typing import Any

# The command name of the fabric manager daemon (/usr/bin/nv-fabricmanager), as the kernel truncates it to 15
# characters in /proc/<pid>/comm.
FABRIC_MANAGER_COMM = "nv-fabricmanage"


def _run(binary: str, args: list[str], timeout: int) -> dict[str, Any]:
    path = binary if os.path.isabs(binary) and os.access(binary, os.X_OK) else shutil.which(binary)
    if not path:
        return {"found": False, "rc": None, "stdout": "", "stderr": ""}
    command = [path, *args]
    limiter = shutil.which("timeout")
    if limiter:  # nvidia-smi can hang on a faulty GPU
        command = [limiter, "-k", "5", str(timeout), *command]
    done = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False)
    return {"found": True, "rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _fabric_manager_pids(procfs: str) -> list[int]:
    return sorted(int(os.path.basename(os.path.dirname(comm)))
                  for comm in glob.glob(os.path.join(procfs, "[0-9]*", "comm"))
                  if (_read(comm) or "").strip() == FABRIC_MANAGER_COMM)


def collect(query_fields: list[str], query_format: str, nvidia_smi: str = "", procfs: str = "/proc",
            timeout: int = 60) -> dict[str, Any]:
    """The probe (llmobs.preflight.checks.Probe, as a dict)."""
    smi = nvidia_smi or "nvidia-smi"
    query = "--query-gpu=" + ",".join(query_fields)
    return {
        "query_fields": list(query_fields),
        "nvidia_smi_query": _run(smi, [query, "--format=" + query_format], timeout),
        "nvidia_smi_q": _run(smi, ["-q"], timeout),
        "driver_version_file": _read(os.path.join(procfs, "driver", "nvidia", "version")),
        "proc_modules": _read(os.path.join(procfs, "modules")),
        "lspci": _run("lspci", ["-Dnn", "-d", "10de:"], timeout),
        "nvidia_ctk_version": _run("nvidia-ctk", ["--version"], timeout),
        "nvidia_ctk_cdi_list": _run("nvidia-ctk", ["cdi", "list"], timeout),
        "docker_info": _run("docker", ["info", "--format", "{{json .}}"], timeout),
        "fabricmanager_pids": _fabric_manager_pids(procfs),
    }
