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
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from llmobs import images
from llmobs.conventions import ALERT_SINK_PORT, ALERT_SINK_SERVICE, COMPOSE_SERVICES, PORTS, SIM_CONTROL_PORT
from llmobs.sim.topology import LabTopology, load_topology

COMPOSE_DIR = images.COMPOSE_DIR
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
TOPOLOGY = COMPOSE_DIR / "lab-topology.yml"
SETTINGS = COMPOSE_DIR / "lab-settings.yml"
PASSWORD_FILE = images.CACHE_DIR / "grafana-admin-password"
UNSHARED_ROOT = images.CACHE_DIR / "host-root-unshared"
MOUNTINFO = Path("/proc/self/mountinfo")
DEFAULT_PROJECT = "llmobs"
# Where simulated hosts run: `llmobs lab up` (the whole lab in one project) and `./kit lab` (the
# lab_simulators role of inventories/lab); `llmobs fault` looks in both unless told a project.
SIMULATOR_PROJECTS = (DEFAULT_PROJECT, "llmobs-lab-simulators")
# Published services: the variable that sets the host port, and the port inside the container.
PUBLISHED = {
    "prometheus": ("LLMOBS_PROMETHEUS_PORT", PORTS["prometheus"]),
    "alertmanager": ("LLMOBS_ALERTMANAGER_PORT", PORTS["alertmanager"]),
    "grafana": ("LLMOBS_GRAFANA_PORT", PORTS["grafana"]),
    ALERT_SINK_SERVICE: ("LLMOBS_ALERT_SINK_PORT", ALERT_SINK_PORT),
    COMPOSE_SERVICES["node"]: ("LLMOBS_NODE_EXPORTER_PORT", PORTS["node"]),
}


# Configuration directories: the variable that moves one, its default (relative to compose/), and where
# the service's container sees it.
CONFIG_DIRS = {
    "prometheus": ("LLMOBS_PROMETHEUS_CONFIG_DIR", "../prometheus", "/etc/prometheus"),
    "alertmanager": ("LLMOBS_ALERTMANAGER_CONFIG_DIR", "../alertmanager", "/etc/alertmanager"),
}


class LabError(RuntimeError):
    pass


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

    # ------------------------------------------------------------------ environment
    def grafana(self) -> tuple[bool, str]:
        """Whether Grafana can run here, and why not."""
        chosen = images.read_env()
        if self.env.get("GRAFANA_IMAGE") or os.environ.get("GRAFANA_IMAGE") or chosen.get("GRAFANA_IMAGE"):
            return True, ""
        if images.IMAGES_ENV.exists():
            pin = images.pins().get("GRAFANA_IMAGE", "grafana/grafana")
            return False, (f"its image {pin} is not on this machine and no registry answers "
                           f"(`llmobs setup` found none; set GRAFANA_IMAGE to a copy you have)")
        return True, ""

    def environment(self) -> dict[str, str]:
        env = {**images.read_env(), **os.environ, **self.env}
        if "LLMOBS_HOST_ROOTFS" not in env and not root_is_shared():
            UNSHARED_ROOT.mkdir(parents=True, exist_ok=True)
            env.update(LLMOBS_HOST_ROOTFS=str(UNSHARED_ROOT), LLMOBS_HOST_ROOTFS_PROPAGATION="rprivate")
        if not env.get("GRAFANA_ADMIN_PASSWORD"):
            env["GRAFANA_ADMIN_PASSWORD"] = self._lab_password() if self.grafana()[0] else secrets.token_urlsafe(18)
        return env

    def _lab_password(self) -> str:
        """The lab's generated Grafana password: made once, kept with the lab's Grafana volume."""
        if not PASSWORD_FILE.exists():
            PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
            PASSWORD_FILE.touch(mode=0o600)
            PASSWORD_FILE.write_text(secrets.token_urlsafe(18), encoding="utf-8")
        return PASSWORD_FILE.read_text(encoding="utf-8").strip()

    def compose(self, *args: str, check: bool = True, capture: bool = True,
                timeout: float | None = None) -> subprocess.CompletedProcess:
        command = ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", self.project]
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
        grafana, reason = self.grafana()
        if not grafana and "grafana" in services:
            services.remove("grafana")
            notes.append(f"Grafana is skipped: {reason}. Everything else runs; its dashboards are still "
                         "generated and checked.")
        self.compose("up", "--detach", "--wait", "--wait-timeout", str(timeout), "--remove-orphans", *services,
                     timeout=timeout + 120)
        return notes

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
        return Path(value) if Path(value).is_absolute() else (COMPOSE_DIR / value).resolve()

    def container(self, service: str) -> str:
        result = self.compose("ps", "--quiet", service)
        if not result.stdout.strip():
            raise LabError(f"{service} is not running in project {self.project}")
        return result.stdout.split()[0]

    def apply(self, service: str, files: dict[str, str]) -> str:
        """Validate and apply configuration files of a running service (llmobs.reload)."""
        from llmobs import reload

        return reload.apply(service, self.config_dir(service), files, container=self.container(service),
                            mount=CONFIG_DIRS[service][2], url=self.url(service))

    def topology(self) -> LabTopology:
        return load_topology(TOPOLOGY)

    def ps(self) -> list[dict]:
        out = self.compose("ps", "--all", "--format", "json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------- CLI
lab_app = typer.Typer(no_args_is_help=True, help="The single-host lab (compose/): up, down, status.")
console = Console()
ProjectOpt = Annotated[str, typer.Option("--project", "-p", envvar="LLMOBS_LAB_PROJECT", help="compose project")]


@lab_app.command()
def up(project: ProjectOpt = DEFAULT_PROJECT,
       gpu: Annotated[bool, typer.Option("--gpu", help="the real dcgm-exporter too (needs an NVIDIA GPU)")] = False,
       sim: Annotated[bool, typer.Option("--sim/--no-sim", help="the simulated GPU servers")] = True) -> None:
    """Bring the lab up: Prometheus, Alertmanager, node_exporter, Grafana (when its image exists), and
    simulated GPU servers with vLLM traffic, an alert sink, or with --gpu the real dcgm-exporter."""
    profiles = (("sim",) if sim else ()) + (("gpu",) if gpu else ())
    lab = Lab(project=project, profiles=profiles)
    try:
        notes = lab.up()
    except (LabError, subprocess.TimeoutExpired) as error:
        console.print(f"[red]the lab did not come up:[/red] {error}")
        raise typer.Exit(1) from None
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    status(project)


@lab_app.command()
def down(project: ProjectOpt = DEFAULT_PROJECT,
         volumes: Annotated[bool, typer.Option("--volumes", help="also delete the data volumes")] = False) -> None:
    """Stop the lab; Prometheus' data, Alertmanager's silences and Grafana's state are kept."""
    Lab(project=project, profiles=("sim", "gpu")).down(volumes)


@lab_app.command("reload")
def reload_config(service: Annotated[str, typer.Argument(help="prometheus or alertmanager")],
                  project: ProjectOpt = DEFAULT_PROJECT) -> None:
    """Validate the lab's current configuration (after `llmobs generate`) inside the running service with its
    own checker, then reload it; a rejected configuration leaves the service as it was."""
    from llmobs.errors import ConfigError

    lab = Lab(project=project)
    try:
        report = lab.apply(service, {})
    except (ConfigError, LabError) as error:
        console.print(f"[red]not reloaded:[/red] {error}")
        raise typer.Exit(1) from None
    console.print(report.strip())
    console.print(f"{service} reloaded")


@lab_app.command()
def status(project: ProjectOpt = DEFAULT_PROJECT) -> None:
    """What runs, where it answers, and the faults in force."""
    lab = Lab(project=project, profiles=("sim", "gpu"))
    simulated = {host.name for host in lab.topology().simulated()}
    table = Table("service", "state", "health", "address")
    running = set()
    for entry in lab.ps():
        service = entry.get("Service", "")
        running.add(service)
        address = ""
        try:
            if service in PUBLISHED:
                address = lab.url(service)
            elif service in simulated:
                address = f"{lab.control_url(service)} (fault port)"
        except LabError:
            address = "-"
        table.add_row(service, entry.get("State", ""), entry.get("Health", ""), address)
    console.print(table)
    if "grafana" in running and PASSWORD_FILE.exists() and not os.environ.get("GRAFANA_ADMIN_PASSWORD"):
        console.print(f"Grafana: user admin, password in {PASSWORD_FILE}")
    console.print("Faults: `llmobs fault kinds`, `llmobs fault inject <host> <fault> ...`, `llmobs fault list`")
