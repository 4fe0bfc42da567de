#!/usr/bin/python
"""Collect the NVIDIA driver stack's raw state on a GPU host for the llmobs preflight.

The module only runs read-only commands and reads /proc; judging happens on the controller in the
llmobs package (filter llmobs_gpu_preflight_report), so the host needs nothing but Python.
"""

from __future__ import annotations

import glob
import os

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: gpu_preflight_probe
short_description: Collect raw NVIDIA driver stack state for the llmobs GPU preflight
description:
  - Runs C(nvidia-smi --query-gpu), C(nvidia-smi -q), C(lspci -Dnn -d 10de:), C(nvidia-ctk --version),
    C(nvidia-ctk cdi list) and C(docker info), reads the procfs files of the NVIDIA driver and looks for
    a running C(nv-fabricmanager). Returns their raw output; changes nothing.
  - Every command runs under C(timeout) when it exists, because nvidia-smi can hang on a faulty GPU.
options:
  nvidia_smi:
    description: Path of nvidia-smi, or empty to search the PATH.
    type: str
    default: ""
  query_fields:
    description: The C(--query-gpu) fields to ask for, as the llmobs plan names them.
    type: list
    elements: str
    required: true
  query_format:
    description: The C(--format) of the query.
    type: str
    default: csv,noheader,nounits
  procfs:
    description: Where the host's procfs is mounted.
    type: path
    default: /proc
  timeout:
    description: Seconds each command may run.
    type: int
    default: 60
author: llm-observability-stack
"""

RETURN = r"""
probe:
  description: Raw results, one entry per command (found, rc, stdout, stderr), plus procfs contents.
  returned: always
  type: dict
"""

# The command name of the fabric manager daemon (/usr/bin/nv-fabricmanager), as the kernel truncates
# it to 15 characters in /proc/<pid>/comm.
FABRIC_MANAGER_COMM = "nv-fabricmanage"


def _run(module, binary, args, timeout):
    path = binary if os.path.isabs(binary) and os.access(binary, os.X_OK) else module.get_bin_path(binary)
    if not path:
        return {"found": False, "rc": None, "stdout": "", "stderr": ""}
    command = [path, *args]
    limiter = module.get_bin_path("timeout")
    if limiter:
        command = [limiter, "-k", "5", str(timeout), *command]
    rc, stdout, stderr = module.run_command(command, check_rc=False)
    return {"found": True, "rc": rc, "stdout": stdout, "stderr": stderr}


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _fabric_manager_pids(procfs):
    pids = []
    for comm in glob.glob(os.path.join(procfs, "[0-9]*", "comm")):
        if (_read(comm) or "").strip() == FABRIC_MANAGER_COMM:
            pids.append(int(os.path.basename(os.path.dirname(comm))))
    return sorted(pids)


def main():
    module = AnsibleModule(
        argument_spec={
            "nvidia_smi": {"type": "str", "default": ""},
            "query_fields": {"type": "list", "elements": "str", "required": True},
            "query_format": {"type": "str", "default": "csv,noheader,nounits"},
            "procfs": {"type": "path", "default": "/proc"},
            "timeout": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    params = module.params
    smi = params["nvidia_smi"] or "nvidia-smi"
    timeout = params["timeout"]
    procfs = params["procfs"]
    query = "--query-gpu=" + ",".join(params["query_fields"])
    probe = {
        "query_fields": params["query_fields"],
        "nvidia_smi_query": _run(module, smi, [query, "--format=" + params["query_format"]], timeout),
        "nvidia_smi_q": _run(module, smi, ["-q"], timeout),
        "driver_version_file": _read(os.path.join(procfs, "driver", "nvidia", "version")),
        "proc_modules": _read(os.path.join(procfs, "modules")),
        "lspci": _run(module, "lspci", ["-Dnn", "-d", "10de:"], timeout),
        "nvidia_ctk_version": _run(module, "nvidia-ctk", ["--version"], timeout),
        "nvidia_ctk_cdi_list": _run(module, "nvidia-ctk", ["cdi", "list"], timeout),
        "docker_info": _run(module, "docker", ["info", "--format", "{{json .}}"], timeout),
        "fabricmanager_pids": _fabric_manager_pids(procfs),
    }
    module.exit_json(changed=False, probe=probe)


if __name__ == "__main__":
    main()
