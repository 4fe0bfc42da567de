"""`llmobs lab ...` (the single-host lab: up, down, reload, status) and `llmobs fault ...` (break and
repair its simulated hosts at runtime, through each host's control port)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from llmobs import http
from llmobs.errors import ConfigError, UnreachableError
from llmobs.lab import DEFAULT_PROJECT, PUBLISHED, SIMULATOR_PROJECTS, Lab, LabError
from llmobs.workspace import Workspace, WorkspaceError

lab_app = typer.Typer(no_args_is_help=True, help="The single-host lab (compose/): up, down, status.")
fault_app = typer.Typer(no_args_is_help=True, help="Inject faults into the lab's simulated hosts, and clear them.")
console = Console()
err_console = Console(stderr=True)
ProjectOpt = Annotated[str, typer.Option("--project", "-p", envvar="LLMOBS_LAB_PROJECT", help="compose project")]


def _fail(error: Exception, what: str = "error", code: int = 2) -> NoReturn:
    err_console.print(f"[red]{what}:[/red] {error}")
    raise typer.Exit(code)


def _lab(project: str, profiles: tuple[str, ...] = ("sim",)) -> Lab:
    try:
        return Lab(project=project, profiles=profiles, workspace=Workspace.find())
    except WorkspaceError as error:
        _fail(error)


@lab_app.command()
def up(project: ProjectOpt = DEFAULT_PROJECT,
       gpu: Annotated[bool, typer.Option("--gpu", help="the real dcgm-exporter too (needs an NVIDIA GPU)")] = False,
       sim: Annotated[bool, typer.Option("--sim/--no-sim", help="the simulated GPU servers")] = True) -> None:
    """Bring the lab up: Prometheus, Alertmanager, node_exporter, Grafana (when its image exists), and
    simulated GPU servers with vLLM traffic, an alert sink, or with --gpu the real dcgm-exporter."""
    lab = _lab(project, (("sim",) if sim else ()) + (("gpu",) if gpu else ()))
    try:
        notes = lab.up()
    except (LabError, subprocess.TimeoutExpired) as error:
        _fail(error, "the lab did not come up", 1)
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    status(project)


@lab_app.command()
def down(project: ProjectOpt = DEFAULT_PROJECT,
         volumes: Annotated[bool, typer.Option("--volumes", help="also delete the data volumes")] = False) -> None:
    """Stop the lab; Prometheus' data, Alertmanager's silences and Grafana's state are kept."""
    _lab(project, ("sim", "gpu")).down(volumes)


@lab_app.command("reload")
def reload_config(service: Annotated[str, typer.Argument(help="prometheus or alertmanager")],
                  project: ProjectOpt = DEFAULT_PROJECT) -> None:
    """Validate the lab's current configuration (after `llmobs generate`) inside the running service with its
    own checker, then reload it; a rejected configuration leaves the service as it was."""
    try:
        report = _lab(project).apply(service, {})
    except (ConfigError, LabError, UnreachableError) as error:
        _fail(error, "not reloaded", 1)
    console.print(report.strip())
    console.print(f"{service} reloaded")


@lab_app.command()
def status(project: ProjectOpt = DEFAULT_PROJECT) -> None:
    """What runs, where it answers, and the faults in force."""
    lab = _lab(project, ("sim", "gpu"))
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
    if "grafana" in running and lab.password_file.exists() and not os.environ.get("GRAFANA_ADMIN_PASSWORD"):
        console.print(f"Grafana: user admin, password in {lab.password_file}")
    console.print("Faults: `llmobs fault kinds`, `llmobs fault inject <host> <fault> ...`, `llmobs fault list`")


# ---------------------------------------------------------------------------------------- faults
Target = Annotated[str, typer.Argument(help="a simulated host of the lab (e.g. gpu-h100-1) or a control URL")]
Project = Annotated[str | None, typer.Option(
    "--project", "-p", envvar="LLMOBS_LAB_PROJECT",
    help="compose project of the simulated hosts [default: that of `llmobs lab up` or of `./kit lab`]")]


def _params(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(item, "is not KEY=VALUE", "write e.g. gpu=3 code=79")
        params[key] = value
    return params


def _control_url(target: str, project: str | None) -> str:
    if target.startswith(("http://", "https://")):
        return target.rstrip("/")
    errors = []
    for candidate in [project] if project else SIMULATOR_PROJECTS:
        try:
            return _lab(candidate).control_url(target)
        except LabError as error:
            errors.append(str(error))
    raise ConfigError("target", "; ".join(dict.fromkeys(errors)), "name a simulated host or give its fault port's URL")


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A control-port call; a refused request (HTTP 4xx) names the field and the fix the simulator gave."""
    try:
        return http.request(url, method, body, hint="is the lab up? (`llmobs lab status`)").json()
    except http.HttpError as error:
        detail = error.response.json() or {}
        raise ConfigError(detail.get("field", "fault"), detail.get("problem", str(error)),
                          detail.get("fix", "see `llmobs fault kinds`")) from None


def _lab_hosts() -> list[str]:
    return [host.name for host in _lab(DEFAULT_PROJECT).topology().simulated()]


def _where(fault: dict[str, Any]) -> str:
    return f"gpu {fault['gpu']}" if fault["gpu"] is not None else fault["engine"] or "exporter"


@fault_app.command()
def inject(target: Target, fault: Annotated[str, typer.Argument(help="see `llmobs fault kinds`")],
           params: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE: gpu=, engine=, code=, ...")] = None,
           project: Project = None) -> None:
    """Inject FAULT into TARGET, e.g. `llmobs fault inject gpu-h100-1 xid gpu=2 code=79`."""
    try:
        url = _control_url(target, project)
        answer = _call("POST", f"{url}/sim/faults", {"fault": fault, **_params(params or [])})
    except (ConfigError, UnreachableError) as error:
        _fail(error)
    injected = answer["fault"]
    where = f"GPU {injected['gpu']}" if injected["gpu"] is not None else injected["engine"] or "exporter"
    console.print(f"injected {injected['fault']} on {answer['host']} ({where}) {injected['params'] or ''}")


@fault_app.command()
def clear(target: Annotated[str | None, typer.Argument(help="host or URL; none: every simulated host")] = None,
          fault: Annotated[str | None, typer.Argument(help="only this fault")] = None,
          params: Annotated[list[str] | None, typer.Argument(help="gpu=N or engine=MODEL")] = None,
          project: Project = None) -> None:
    """Clear faults (all of them by default): the repair, e.g. a GPU reset or an engine restart."""
    try:
        filters = _params(params or [])
        if fault:
            filters["fault"] = fault
        for name in [target] if target else _lab_hosts():
            answer = _call("DELETE", http.url(_control_url(name, project), "/sim/faults", filters))
            for item in answer["cleared"]:
                console.print(f"cleared {item['fault']} on {answer['host']}")
    except (ConfigError, UnreachableError) as error:
        _fail(error)


@fault_app.command("list")
def list_faults(target: Annotated[str | None, typer.Argument(help="host or URL; none: every simulated host")] = None,
                project: Project = None) -> None:
    """The faults in force."""
    table = Table("host", "fault", "target", "parameters")
    try:
        for name in [target] if target else _lab_hosts():
            answer = _call("GET", f"{_control_url(name, project)}/sim/faults")
            for item in answer["faults"]:
                table.add_row(answer["host"], item["fault"], _where(item), json.dumps(item["params"]))
    except (ConfigError, UnreachableError) as error:
        _fail(error)
    console.print(table)


@fault_app.command()
def kinds() -> None:
    """Every fault the simulators accept, with its parameters."""
    from llmobs.sim.faults import KINDS

    table = Table("fault", "needs", "parameters (default)", "what happens")
    for kind in KINDS.values():
        needs = {"gpu": "gpu=N", "engine": "engine=MODEL|PORT", "exporter": "-"}[kind.scope]
        params = ", ".join(f"{p.name}={'required' if p.default is None else f'{p.default:g}'}" for p in kind.params)
        table.add_row(kind.name, needs, params, kind.summary)
    console.print(table)
