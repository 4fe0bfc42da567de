"""`llmobs sim ...` (run a simulator) and `llmobs fault ...` (break and repair a running one).

`llmobs sim dcgm` takes dcgm-exporter's own flags and environment variables, so the stand-in
dcgm-exporter image runs it behind /usr/bin/dcgm-exporter with any service definition written for the
real exporter; what only the simulator needs comes from LLMOBS_SIM_* variables.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import typer
from rich.console import Console
from rich.table import Table

from llmobs.conventions import ALERT_SINK_PORT, PORTS, SIM_CONTROL_PORT
from llmobs.errors import ConfigError

sim_app = typer.Typer(no_args_is_help=True, help="Run a simulator: GPUs behind dcgm-exporter, vLLM, a whole host.")
fault_app = typer.Typer(no_args_is_help=True, help="Inject faults into the lab's simulated hosts, and clear them.")
console = Console()
err_console = Console(stderr=True)

# dcgm-exporter's flags and variables (pkg/cmd/app.go of release 4.5.3-4.8.2), shared by `dcgm` and `host`.
Collectors = Annotated[Path, typer.Option("--collectors", "-f", envvar="DCGM_EXPORTER_COLLECTORS",
                                          help="counters CSV (dcgm-exporter's format)")]
Address = Annotated[str, typer.Option("--address", "-a", envvar="DCGM_EXPORTER_LISTEN", help="listen address")]
CollectInterval = Annotated[int, typer.Option("--collect-interval", "-c", envvar="DCGM_EXPORTER_INTERVAL",
                                              help="milliseconds between collections")]
XidWindow = Annotated[int, typer.Option("--xid-count-window-size", "-x", envvar="DCGM_EXPORTER_XID_COUNT_WINDOW_SIZE",
                                        help="DCGM_EXP_XID_ERRORS_COUNT window, ms")]
ClockWindow = Annotated[int, typer.Option("--clock-events-count-window-size",
                                          envvar="DCGM_EXPORTER_CLOCK_EVENTS_COUNT_WINDOW_SIZE",
                                          help="DCGM_EXP_CLOCK_EVENTS_COUNT window, ms")]
NoHostname = Annotated[bool, typer.Option("--no-hostname", "-n", envvar="DCGM_EXPORTER_NO_HOSTNAME",
                                          help="omit the hostname label")]
ExporterRelease = Annotated[str | None, typer.Option(
    "--exporter-release", envvar="LLMOBS_SIM_DCGM_EXPORTER_RELEASE",
    help="dcgm-exporter release to imitate, e.g. 4.5.3-4.8.2 (Hostname label) [default: the kit's pin]")]
OldNamespace = Annotated[bool, typer.Option("--use-old-namespace", "-o", envvar="DCGM_EXPORTER_USE_OLD_NAMESPACE",
                                            help="label `uuid` instead of `UUID`")]
ReplaceBlanks = Annotated[bool, typer.Option("--replace-blanks-in-model-name", "--rbmn",
                                             envvar="DCGM_EXPORTER_REPLACE_BLANKS_IN_MODEL_NAME")]
WebConfig = Annotated[str, typer.Option("--web-config-file", envvar="DCGM_EXPORTER_WEB_CONFIG_FILE",
                                        help="TLS/basic auth (not simulated: refused when set)")]
FaultPort = Annotated[int, typer.Option("--fault-port", envvar="LLMOBS_SIM_FAULT_PORT", help="control port")]
GpuModel = Annotated[str, typer.Option("--gpu-model", envvar="LLMOBS_SIM_GPU_MODEL",
                                       help="GPU model (a key of the catalog's gpus.yaml)")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", envvar="LLMOBS_SIM_DEBUG", help="log every request")]


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _serve_until_stopped(start: Callable[[], None], stop: Callable[[], None], verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # As PID 1 in a container, Python ignores SIGTERM unless it handles it.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        start()
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        stop()


def _fail(error: Exception) -> None:
    err_console.print(f"[red]error:[/red] {error}")
    raise typer.Exit(2)


def _exporter_options(collectors: Path, collect_interval: int, xid_window: int, clock_window: int,
                      no_hostname: bool, old_namespace: bool, replace_blanks: bool, web_config: str,
                      hostname: str, release: str | None):
    from llmobs.sim.dcgm import PINNED_RELEASE, ExporterOptions, check_release

    if web_config:
        raise ConfigError("--web-config-file", "TLS and basic auth are not simulated",
                          "leave it unset for the simulator (the real dcgm-exporter honours it)")
    if collect_interval < 100:
        raise ConfigError("--collect-interval", f"{collect_interval} ms is too short", "use 1000 or more")
    return ExporterOptions(
        collectors=collectors, collect_interval_ms=collect_interval, xid_window_ms=xid_window,
        clock_events_window_ms=clock_window, hostname=None if no_hostname else hostname,
        uuid_label="uuid" if old_namespace else "UUID", replace_blanks_in_model_name=replace_blanks,
        driver_version=os.environ.get("LLMOBS_SIM_DRIVER_VERSION") or "570.133.20",
        release=check_release(release or PINNED_RELEASE, "--exporter-release"))


def _node_name() -> str:
    return os.environ.get("NODE_NAME") or socket.gethostname()


@sim_app.command()
def dcgm(
    collectors: Collectors = Path("/etc/dcgm-exporter/default-counters.csv"),
    address: Address = f":{PORTS['dcgm']}",
    collect_interval: CollectInterval = 30000,
    xid_window: XidWindow = 300000,
    clock_window: ClockWindow = 300000,
    no_hostname: NoHostname = False,
    old_namespace: OldNamespace = False,
    replace_blanks: ReplaceBlanks = False,
    web_config: WebConfig = "",
    exporter_release: ExporterRelease = None,
    gpu_model: GpuModel = "H100-SXM",
    gpus: Annotated[int, typer.Option("--gpus", envvar="LLMOBS_SIM_GPUS", min=1, max=16)] = 8,
    fault_port: FaultPort = SIM_CONTROL_PORT,
    verbose: Verbose = False,
) -> None:
    """dcgm-exporter with simulated, idle GPUs (the stand-in image's /usr/bin/dcgm-exporter)."""
    from llmobs.sim.host import HostConfig, HostSim, parse_address

    try:
        options = _exporter_options(collectors, collect_interval, xid_window, clock_window, no_hostname,
                                    old_namespace, replace_blanks, web_config, _node_name(), exporter_release)
        sim = HostSim(HostConfig(name=_node_name(), gpu_model=gpu_model, gpus=gpus, exporter=options,
                                 exporter_address=parse_address(address), fault_port=fault_port))
    except ConfigError as error:
        _fail(error)
    _serve_until_stopped(sim.start, sim.stop, verbose)


@sim_app.command()
def vllm(
    model: Annotated[str, typer.Option("--model", envvar="LLMOBS_SIM_MODEL", help="served model name")],
    port: Annotated[int, typer.Option("--port", envvar="LLMOBS_SIM_PORT")] = PORTS["vllm"],
    gpus: Annotated[str, typer.Option("--gpus", envvar="LLMOBS_SIM_ENGINE_GPUS", help="GPU indexes, e.g. 0,1")] = "0",
    params_b: Annotated[float, typer.Option("--params-b", envvar="LLMOBS_SIM_PARAMS_B", help="model size, B")] = 8.0,
    rps: Annotated[float, typer.Option("--rps", envvar="LLMOBS_SIM_RPS", help="mean requests per second")] = 2.0,
    vllm_version: Annotated[str, typer.Option("--vllm-version", envvar="LLMOBS_SIM_VLLM_VERSION",
                                              help="the vLLM release to imitate: 0.33.0 or 0.10.2")] = "0.33.0",
    gpu_model: GpuModel = "H100-SXM",
    fault_port: FaultPort = SIM_CONTROL_PORT,
    verbose: Verbose = False,
) -> None:
    """One vLLM server (OpenAI API and /metrics) driven by simulated traffic."""
    from llmobs.sim.host import HostConfig, HostSim
    from llmobs.sim.vllm import EngineConfig

    try:
        indexes = tuple(int(part) for part in gpus.split(",") if part.strip())
    except ValueError:
        _fail(ConfigError("--gpus", f"{gpus!r} is not a list of GPU indexes", "write e.g. 0,1"))
    try:
        engine = EngineConfig(model=model, port=port, gpus=indexes, params_b=params_b, rps=rps,
                              vllm_version=vllm_version)
        sim = HostSim(HostConfig(name=_node_name(), gpu_model=gpu_model, gpus=max(indexes) + 1,
                                 engines=(engine,), fault_port=fault_port))
    except ConfigError as error:
        _fail(error)
    _serve_until_stopped(sim.start, sim.stop, verbose)


@sim_app.command()
def host(
    name: Annotated[str, typer.Option("--host", envvar="LLMOBS_SIM_HOST", help="a host of the lab topology")],
    topology: Annotated[Path, typer.Option("--topology", envvar="LLMOBS_SIM_TOPOLOGY")] = Path(
        "/etc/llmobs/lab-topology.yml"),
    settings: Annotated[Path, typer.Option("--settings", envvar="LLMOBS_SIM_SETTINGS",
                                           help="settings with the vllm_endpoints")] = Path(
        "/etc/llmobs/lab-settings.yml"),
    collectors: Collectors = Path("/etc/dcgm-exporter/default-counters.csv"),
    address: Address = f":{PORTS['dcgm']}",
    collect_interval: CollectInterval = 30000,
    xid_window: XidWindow = 300000,
    clock_window: ClockWindow = 300000,
    no_hostname: NoHostname = False,
    fault_port: FaultPort = SIM_CONTROL_PORT,
    verbose: Verbose = False,
) -> None:
    """A whole simulated GPU server of the lab: dcgm-exporter and its vLLM servers in one process,
    the engines' load driving the GPUs."""
    from llmobs.settings import load_settings_file
    from llmobs.sim.host import HostConfig, HostSim, parse_address
    from llmobs.sim.topology import engine_configs, load_topology

    try:
        lab_host = load_topology(topology).host(name)
        if lab_host.sim is None:
            raise ConfigError(f"hosts.{name}.sim", "is not set: this host is not simulated",
                              "add `sim: {gpu_model: ..., gpus: ...}` to it")
        options = _exporter_options(collectors, collect_interval, xid_window, clock_window, no_hostname,
                                    False, False, "", os.environ.get("NODE_NAME") or name,
                                    lab_host.sim.dcgm_exporter)
        sim = HostSim(HostConfig(
            name=name, gpu_model=lab_host.sim.gpu_model, gpus=lab_host.sim.gpus,
            engines=engine_configs(lab_host, load_settings_file(settings)),
            exporter=options if lab_host.sim.gpus else None, exporter_address=parse_address(address),
            fault_port=fault_port))
    except ConfigError as error:
        _fail(error)
    _serve_until_stopped(sim.start, sim.stop, verbose)


@sim_app.command("alert-sink")
def alert_sink(
    port: Annotated[int, typer.Option("--port", envvar="LLMOBS_ALERT_SINK_PORT")] = ALERT_SINK_PORT,
    bind: Annotated[str, typer.Option("--bind", help="listen address; empty: all")] = "",
    verbose: Verbose = False,
) -> None:
    """A webhook receiver that records Alertmanager's notifications (POST/GET /alerts)."""
    from llmobs.sim.alert_sink import AlertSink

    sink = AlertSink((bind, port))
    _serve_until_stopped(sink.listener.start, sink.listener.stop, verbose)


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
    from llmobs.lab import SIMULATOR_PROJECTS, Lab, LabError

    errors = []
    for candidate in [project] if project else SIMULATOR_PROJECTS:
        try:
            return Lab(project=candidate).control_url(target)
        except LabError as error:
            errors.append(str(error))
    raise ConfigError("target", "; ".join(dict.fromkeys(errors)), "name a simulated host or give its fault port's URL")


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}")
        raise ConfigError(detail.get("field", "fault"), detail.get("problem", str(error)),
                          detail.get("fix", "see `llmobs fault kinds`")) from None
    except (urllib.error.URLError, OSError) as error:
        raise ConfigError("target", f"{url} does not answer: {error}", "is the lab up? (`llmobs lab status`)") from None


def _lab_hosts() -> list[str]:
    from llmobs.lab import Lab

    return [host.name for host in Lab().topology().simulated()]


@fault_app.command()
def inject(target: Target, fault: Annotated[str, typer.Argument(help="see `llmobs fault kinds`")],
           params: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE: gpu=, engine=, code=, ...")] = None,
           project: Project = None) -> None:
    """Inject FAULT into TARGET, e.g. `llmobs fault inject gpu-h100-1 xid gpu=2 code=79`."""
    try:
        url = _control_url(target, project)
        answer = _call("POST", f"{url}/sim/faults", {"fault": fault, **_params(params or [])})
    except ConfigError as error:
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
        targets = [target] if target else _lab_hosts()
        for name in targets:
            url = _control_url(name, project)
            answer = _call("DELETE", f"{url}/sim/faults?{urlencode(filters)}")
            for item in answer["cleared"]:
                console.print(f"cleared {item['fault']} on {answer['host']}")
    except ConfigError as error:
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
                where = f"gpu {item['gpu']}" if item["gpu"] is not None else item["engine"] or "exporter"
                table.add_row(answer["host"], item["fault"], where, json.dumps(item["params"]))
    except ConfigError as error:
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
