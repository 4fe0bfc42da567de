"""Docker daemon configuration for the docker_host role: merge the kit's keys into a host's daemon.json.

The role never overwrites what an operator or another tool (nvidia-ctk, a registry mirror set-up) put
into /etc/docker/daemon.json: it reads the file, merges its own keys in and writes it back only when the
merged content differs. A file that is not valid JSON stops the role before anything is written.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from llmobs.errors import ConfigError


def merge(base: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """`wanted` over `base`: mappings merge key by key, any other value is replaced."""
    merged = copy.deepcopy(base)
    for key, value in wanted.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def wanted_config(nvidia_runtime: bool, runtime_path: str, nvidia_default: bool,
                  options: dict[str, Any]) -> dict[str, Any]:
    """The keys the role manages: the NVIDIA runtime as `nvidia-ctk runtime configure` writes it, the
    default runtime if asked, and the site's own daemon options."""
    if nvidia_default and not nvidia_runtime:
        raise ConfigError("docker_host_nvidia_default_runtime", "is true but docker_host_nvidia_runtime is false",
                          "set docker_host_nvidia_runtime: true as well, or drop the default runtime")
    config: dict[str, Any] = {}
    if nvidia_runtime:
        config["runtimes"] = {"nvidia": {"args": [], "path": runtime_path}}
    if nvidia_default:
        config["default-runtime"] = "nvidia"
    return merge(config, options)


def daemon_json_update(current: str | None, wanted: dict[str, Any], path: str = "/etc/docker/daemon.json"
                       ) -> dict[str, Any]:
    """The host's daemon.json (`current`, None when absent) with `wanted` merged in, and whether that
    differs from what the file holds now (formatting aside)."""
    if current is None or not current.strip():
        existing: dict[str, Any] = {}
    else:
        try:
            existing = json.loads(current)
        except json.JSONDecodeError as error:
            raise ConfigError(path, f"is not valid JSON ({error})",
                              "repair or remove the file on the host; the role merges into it and never "
                              "replaces it") from None
        if not isinstance(existing, dict):
            raise ConfigError(path, "holds JSON that is not an object", "make it a JSON object or remove it")
    merged = merge(existing, wanted)
    return {"config": merged, "differs": merged != existing}


def daemon_json(current: str | None, nvidia_runtime: bool, runtime_path: str, nvidia_default: bool,
                options: dict[str, Any], path: str = "/etc/docker/daemon.json") -> dict[str, Any]:
    """What the docker_host role writes: the host's daemon.json with the role's keys merged in."""
    return daemon_json_update(current, wanted_config(nvidia_runtime, runtime_path, nvidia_default, options), path)
