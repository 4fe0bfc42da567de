"""Ansible filters of the gpu_preflight and docker_host roles: thin wrappers around llmobs (controller side)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

try:
    from llmobs import dockerhost
    from llmobs.errors import ConfigError
    from llmobs.preflight import judge, plan
except ImportError as error:  # pragma: no cover - depends on the controller's Python
    raise AnsibleFilterError(
        "the llmobs package is not importable by this ansible-playbook: run it from the kit's virtual "
        f"environment (.venv/bin/ansible-playbook) or `pip install` the kit there ({error})"
    ) from error


def _plain(value: Any) -> Any:
    """Plain Python data: ansible-core hands filters lazy, tagged containers that pydantic reads raw."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    for scalar in (bool, int, float, str):  # bool first: it is also an int
        if isinstance(value, scalar):
            return scalar(value)
    return value


def gpu_preflight_plan(variables: dict[str, Any]) -> dict[str, Any]:
    """Validate the role's variables (naming any bad one) and return what the probe must run."""
    try:
        return plan(_plain(variables))
    except ConfigError as error:
        raise AnsibleFilterError(str(error)) from None


def gpu_preflight_report(probe: dict[str, Any], preflight_plan: dict[str, Any], host: str = "") -> dict[str, Any]:
    """Verdicts, summary table and blocking checks of one host's probe."""
    try:
        return judge(_plain(probe), _plain(preflight_plan), str(host))
    except ConfigError as error:
        raise AnsibleFilterError(str(error)) from None


def docker_daemon_json(current: str | None, nvidia_runtime: bool, runtime_path: str, nvidia_default: bool,
                       options: dict[str, Any], path: str) -> dict[str, Any]:
    """daemon.json (content None when absent) with the docker_host role's keys merged in: {config, differs}."""
    try:
        wanted = dockerhost.wanted_config(bool(nvidia_runtime), str(runtime_path), bool(nvidia_default),
                                          _plain(options))
        return dockerhost.daemon_json_update(None if current is None else str(current), wanted, str(path))
    except ConfigError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "llmobs_gpu_preflight_plan": gpu_preflight_plan,
            "llmobs_gpu_preflight_report": gpu_preflight_report,
            "llmobs_docker_daemon_json": docker_daemon_json,
        }
