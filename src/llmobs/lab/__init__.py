"""The single-host lab: the Compose project in compose/, run with the images `llmobs setup` chose.

`llmobs lab up` is `docker compose --profile sim up -d --wait` plus three decisions made plainly:
the images come from .cache/images.env (stand-ins where no registry answers); Grafana is started only
when its image can be had, and otherwise skipped with the reason printed; Grafana's admin password comes
from GRAFANA_ADMIN_PASSWORD or, for the lab only, is generated once into .cache/grafana-admin-password.
The end-to-end tests run the same project under another name and on ephemeral ports (`Lab(project=...,
env=...)`), so they never touch a developer's lab.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from llmobs import images, reload
from llmobs.conventions import (
    ALERT_SINK_PORT,
    ALERT_SINK_SERVICE,
    COMPOSE_SERVICES,
    OTLP_GATEWAY_PORT,
    OTLP_GATEWAY_SERVICE,
    PORTS,
    SIM_CONTROL_PORT,
)
from llmobs.sim.topology import LabTopology, load_topology
from llmobs.workspace import Workspace

MOUNTINFO = Path("/proc/self/mountinfo")
DEFAULT_PROJECT = "llmobs"
# Where simulated hosts run: `llmobs lab up` (the whole lab in one project) and `./kit lab` (the
# lab_simulators role of inventories/lab); `llmobs fault` looks in both unless told a project.
SIMULATOR_PROJECTS = (DEFAULT_PROJECT, "llmobs-lab-simulators")
# The lab's real engines (not simulated): `llmobs fault stop|start <service>` stops and starts their containers.
REAL_ENGINES = {"llamacpp": "llama.cpp's llama-server (compose/services/llamacpp.yaml)"}
# Published services: the variable that sets the host port, and the port inside the container.
PUBLISHED = {
    "prometheus": ("LLMOBS_PROMETHEUS_PORT", PORTS["prometheus"]),
    "alertmanager": ("LLMOBS_ALERTMANAGER_PORT", PORTS["alertmanager"]),
    "grafana": ("LLMOBS_GRAFANA_PORT", PORTS["grafana"]),
    ALERT_SINK_SERVICE: ("LLMOBS_ALERT_SINK_PORT", ALERT_SINK_PORT),
    COMPOSE_SERVICES["node"]: ("LLMOBS_NODE_EXPORTER_PORT", PORTS["node"]),
    COMPOSE_SERVICES["prober"]: ("LLMOBS_PROBER_PORT", PORTS["prober"]),
    OTLP_GATEWAY_SERVICE: ("LLMOBS_OTLP_GATEWAY_PORT", OTLP_GATEWAY_PORT),
}


# Configuration directories: the variable that moves one, its default (relative to compose/), and where
# the service's container sees it.
CONFIG_DIRS = {
    "prometheus": ("LLMOBS_PROMETHEUS_CONFIG_DIR", "../prometheus", "/etc/prometheus"),
    "alertmanager": ("LLMOBS_ALERTMANAGER_CONFIG_DIR", "../alertmanager", "/etc/alertmanager"),
}


class LabError(RuntimeError):
    pass


class Availability(NamedTuple):
    available: bool
    reason: str  # why not, when not


def root_is_shared(mountinfo: Path = MOUNTINFO) -> bool:
    """Whether / is a shared mount, which Docker needs to bind it into node_exporter with rslave."""
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[4] == "/":
            return any(tag.startswith("shared:") for tag in fields[6:fields.index("-")])
    return False


@dataclass
class Lab:
    project: str = DEFAULT_PROJECT
    env: dict[str, str] = field(default_factory=dict)   # variables over the environment (ports, config dirs)
    profiles: tuple[str, ...] = ("sim",)
    workspace: Workspace = field(default_factory=Workspace.find)

    # ------------------------------------------------------------------ the checkout's files
    @property
    def compose_file(self) -> Path:
        return self.workspace.compose_dir / "compose.yaml"

    @property
    def password_file(self) -> Path:
        """The lab's generated Grafana admin password (when GRAFANA_ADMIN_PASSWORD is not set)."""
        return self.workspace.cache_dir / "grafana-admin-password"

    # ------------------------------------------------------------------ environment
    def image_available(self, variable: str) -> Availability:
        """Whether the image of `variable` (an image without a stand-in: Grafana's, the Collector's,
        Jaeger's) can be had here, and why not."""
        chosen = images.read_env(self.workspace.images_env)
        if self.env.get(variable) or os.environ.get(variable) or chosen.get(variable):
            return Availability(True, "")
        if self.workspace.images_env.exists():
            pin = images.pins(self.workspace.compose_dir).get(variable, variable)
            return Availability(False, f"its image {pin} is not on this machine and no registry answers "
                                       f"(`llmobs setup` found none; set {variable} to a copy you have)")
        return Availability(True, "")

    def grafana_available(self) -> Availability:
        """Whether Grafana can run here, and why not."""
        return self.image_available("GRAFANA_IMAGE")

    def environment(self) -> dict[str, str]:
        env = {**images.read_env(self.workspace.images_env), **os.environ, **self.env}
        if "LLMOBS_HOST_ROOTFS" not in env and not root_is_shared():
            unshared = self.workspace.cache_dir / "host-root-unshared"
            unshared.mkdir(parents=True, exist_ok=True)
            env.update(LLMOBS_HOST_ROOTFS=str(unshared), LLMOBS_HOST_ROOTFS_PROPAGATION="rprivate")
        if not env.get("GRAFANA_ADMIN_PASSWORD"):
            env["GRAFANA_ADMIN_PASSWORD"] = (self._lab_password() if self.grafana_available().available
                                             else secrets.token_urlsafe(18))
        return env

    def _lab_password(self) -> str:
        """The lab's generated Grafana password: made once, kept with the lab's Grafana volume."""
        path = self.password_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(18), encoding="utf-8")
        return path.read_text(encoding="utf-8").strip()

    def compose(self, *args: str, check: bool = True, capture: bool = True,
                timeout: float | None = None) -> subprocess.CompletedProcess:
        command = ["docker", "compose", "-f", str(self.compose_file), "-p", self.project]
        for profile in self.profiles:
            command += ["--profile", profile]
        result = subprocess.run([*command, *args], env=self.environment(), capture_output=capture, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise LabError(f"`docker compose {' '.join(args)}` failed:\n{(result.stderr or '')[-3000:]}")
        return result

    # ------------------------------------------------------------------ lifecycle
    def services(self) -> list[str]:
        return self.compose("config", "--services").stdout.split()

    def up(self, timeout: int = 180) -> list[str]:
        """Start the lab and wait until every service is healthy; returns notes for the user."""
        notes = []
        services = self.services()
        if "LLMOBS_HOST_ROOTFS" not in {**os.environ, **self.env} and not root_is_shared():
            notes.append("node_exporter cannot mount the host's root: / is not a shared mount here (no "
                         "systemd?), so it reports CPU and memory but filesystems only as its container sees "
                         "them. `mount --make-rshared /` fixes it.")
        grafana, reason = self.grafana_available()
        if not grafana and "grafana" in services:
            services.remove("grafana")
            notes.append(f"Grafana is skipped: {reason}. Everything else runs; its dashboards are still "
                         "generated and checked.")
        self.compose("up", "--detach", "--wait", "--wait-timeout", str(timeout), "--remove-orphans", *services,
                     timeout=timeout + 120)
        return notes

    def stop_engine(self, service: str) -> None:
        """Stop a real engine's container (as a crashed server: nothing answers on its port)."""
        self.compose("stop", self._real_engine(service))

    def start_engine(self, service: str, timeout: int = 120) -> None:
        self.compose("up", "--detach", "--wait", "--wait-timeout", str(timeout), "--no-deps",
                     self._real_engine(service), timeout=timeout + 60)

    @staticmethod
    def _real_engine(service: str) -> str:
        if service not in REAL_ENGINES:
            raise LabError(f"{service!r} is not a real engine of the lab; use one of {', '.join(REAL_ENGINES)} "
                           "(simulated engines: `llmobs fault inject <host> engine-down engine=<model>`)")
        return service

    def down(self, volumes: bool = False) -> None:
        self.compose("down", "--remove-orphans", *(["--volumes"] if volumes else []))

    # ------------------------------------------------------------------ addresses
    def port(self, service: str, container_port: int) -> str:
        """host:port where a published container port answers (ports may be ephemeral)."""
        result = self.compose("port", service, str(container_port), check=False)
        address = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
        if result.returncode != 0 or not address:
            raise LabError(f"{service} publishes no port {container_port} in project {self.project}: "
                           "is the lab up? (`llmobs lab up`)")
        return address.replace("0.0.0.0:", "127.0.0.1:")

    def url(self, service: str) -> str:
        return f"http://{self.port(service, PUBLISHED[service][1])}"

    def control_url(self, host: str) -> str:
        """The fault-injection port of a simulated host."""
        names = [h.name for h in self.topology().simulated()]
        if host not in names:
            raise LabError(f"{host!r} is not a simulated host of the lab; use one of {', '.join(names)}")
        return f"http://{self.port(host, SIM_CONTROL_PORT)}"

    def config_dir(self, service: str) -> Path:
        """The host directory the service's configuration is mounted from."""
        variable, default, _mount = CONFIG_DIRS[service]
        value = self.environment().get(variable) or default
        return Path(value) if Path(value).is_absolute() else (self.workspace.compose_dir / value).resolve()

    def container(self, service: str) -> str:
        result = self.compose("ps", "--quiet", service)
        if not result.stdout.strip():
            raise LabError(f"{service} is not running in project {self.project}")
        return result.stdout.split()[0]

    def apply(self, service: str, files: dict[str, str]) -> str:
        """Validate and apply configuration files of a running service (llmobs.reload)."""
        return reload.apply(service, self.config_dir(service), files, container=self.container(service),
                            mount=CONFIG_DIRS[service][2], url=self.url(service))

    def topology(self) -> LabTopology:
        return load_topology(self.workspace.lab_topology)

    def ps(self) -> list[dict]:
        out = self.compose("ps", "--all", "--format", "json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]
