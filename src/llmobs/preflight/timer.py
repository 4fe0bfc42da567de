"""The gpu_preflight role's timer: systemd units that run the preflight on the host between converges
(llmobs.preflight.host), and the JSON configuration they read. Rendered on the controller from the role's
validated variables, so a bad interval or path stops the play before the host is touched."""

from __future__ import annotations

import json
import posixpath
from typing import Annotated, Any

from pydantic import Field, ValidationError

from llmobs.errors import from_validation_error
from llmobs.preflight.host import shipped_files
from llmobs.types import Strict

UNIT = "llmobs-gpu-preflight"
# A systemd time span (systemd.time(7)): 15min, 1h, 30s, 1h 30min.
TimeSpan = Annotated[str, Field(pattern=r"^\d+\s?(s|sec|min|m|h|hr|d)(\s\d+\s?(s|sec|min|m|h|hr|d))*$")]
AbsolutePath = Annotated[str, Field(pattern=r"^/[^\s'\"]*$")]


class TimerVariables(Strict):
    gpu_preflight_timer_interval: TimeSpan
    gpu_preflight_timer_dir: AbsolutePath
    gpu_preflight_textfile_dir: AbsolutePath
    gpu_preflight_python: AbsolutePath
    gpu_preflight_systemd_dir: AbsolutePath


def _service(v: TimerVariables) -> str:
    config = f"{v.gpu_preflight_timer_dir}/gpu_preflight.json"
    return f"""# Managed by the gpu_preflight role (llmobs.preflight.timer): do not edit.
[Unit]
Description=llmobs GPU preflight: the NVIDIA stack's verdicts as node_exporter textfile metrics
Documentation=file://{v.gpu_preflight_timer_dir}/llmobs/preflight/host.py
After=nvidia-persistenced.service nvidia-fabricmanager.service

[Service]
Type=oneshot
Environment=PYTHONPATH={v.gpu_preflight_timer_dir}
ExecStart={v.gpu_preflight_python} -m llmobs.preflight.host --plan {config}
# Read-only apart from the textfile directory; nvidia-smi needs the devices, so no PrivateDevices.
ProtectSystem=strict
ReadWritePaths={v.gpu_preflight_textfile_dir}
ProtectHome=yes
PrivateTmp=yes
NoNewPrivileges=yes
Nice=10
TimeoutStartSec=10min
"""


def _timer(v: TimerVariables) -> str:
    return f"""# Managed by the gpu_preflight role (llmobs.preflight.timer): do not edit.
[Unit]
Description=Run the llmobs GPU preflight every {v.gpu_preflight_timer_interval}

[Timer]
OnBootSec=2min
OnUnitActiveSec={v.gpu_preflight_timer_interval}
RandomizedDelaySec=60
Persistent=true

[Install]
WantedBy=timers.target
"""


def timer_files(values: dict[str, Any], plan: dict[str, Any], probe: dict[str, Any], host: str) -> dict[str, Any]:
    """{units: {name: text}, files: {path under gpu_preflight_timer_dir: text}, install: ...}: what the role
    installs; `install` is the same as one tree (root, files relative to it, which of them are units), which
    the role writes in one step."""
    try:
        variables = TimerVariables.model_validate(values)
    except ValidationError as error:
        raise from_validation_error(error, source="gpu_preflight") from None
    config = {"host": host, "plan": plan, "probe": probe, "textfile_dir": variables.gpu_preflight_textfile_dir}
    units = {f"{UNIT}.service": _service(variables), f"{UNIT}.timer": _timer(variables)}
    files = {**shipped_files(), "gpu_preflight.json": json.dumps(config, indent=2, sort_keys=True) + "\n"}
    directories = {"files": variables.gpu_preflight_timer_dir, "units": variables.gpu_preflight_systemd_dir}
    root = posixpath.commonpath(list(directories.values()))
    under = {kind: posixpath.relpath(directory, root) for kind, directory in directories.items()}
    tree = {posixpath.normpath(posixpath.join(under[kind], name)): text
            for kind, texts in (("files", files), ("units", units)) for name, text in texts.items()}
    return {"units": units, "files": files,
            "install": {"root": root, "files": tree,
                        "units": sorted(posixpath.normpath(posixpath.join(under["units"], name)) for name in units)}}
