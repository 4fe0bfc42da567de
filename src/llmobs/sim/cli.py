"""`llmobs sim ...`: run a simulator (breaking and repairing a running one is `llmobs fault`, llmobs.lab.cli).

`llmobs sim dcgm` takes dcgm-exporter's own flags and environment variables, so the stand-in
dcgm-exporter image runs it behind /usr/bin/dcgm-exporter with any service definition written for the
real exporter; what only the simulator needs comes from LLMOBS_SIM_* variables.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from llmobs import exposition
from llmobs.conventions import ALERT_SINK_PORT, PORTS, SIM_CONTROL_PORT
from llmobs.errors import ConfigError

if TYPE_CHECKING:
    from llmobs.sim.dcgm import ExporterOptions
    from llmobs.sim.host import HostConfig

sim_app = typer.Typer(no_args_is_help=True, help="Run a simulator: GPUs behind dcgm-exporter, vLLM, a whole host.")
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
                                        help="exporter-toolkit web config: TLS and basic auth")]
FaultPort = Annotated[int, typer.Option("--fault-port", envvar="LLMOBS_SIM_FAULT_PORT", help="control port")]
GpuModel = Annotated[str, typer.Option("--gpu-model", envvar="LLMOBS_SIM_GPU_MODEL",
                                       help="GPU model (a key of the catalog's gpus.yaml)")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", envvar="LLMOBS_SIM_DEBUG", help="log every request")]


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _serve_until_stopped(start: Callable[[], None], stop: Callable[[], None], verbose: bool,
                         until: threading.Thread | None = None) -> None:
    """Run until SIGTERM or Ctrl-C, or until the thread `until` ends by itself."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # As PID 1 in a container, Python ignores SIGTERM unless it handles it.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        start()
        if until is None:
            signal.pause()
        else:
            until.join()
    except KeyboardInterrupt:
        pass
    finally:
        stop()


def _fail(error: Exception) -> NoReturn:
    err_console.print(f"[red]error:[/red] {error}")
    raise typer.Exit(2)


def _run_host(config: Callable[[], HostConfig], verbose: bool) -> None:
    """Build the host from its configuration (bad input ends the command, naming the option), then serve it."""
    from llmobs.sim.host import HostSim

    try:
        sim = HostSim(config())
    except ConfigError as error:
        _fail(error)
    _serve_until_stopped(sim.start, sim.stop, verbose)


def _exporter_options(collectors: Path, collect_interval: int, xid_window: int, clock_window: int,
                      no_hostname: bool, old_namespace: bool, replace_blanks: bool,
                      hostname: str, release: str | None) -> ExporterOptions:
    from llmobs.sim.dcgm import PINNED_RELEASE, ExporterOptions, check_release

    if collect_interval < 100:
        raise ConfigError("--collect-interval", f"{collect_interval} ms is too short", "use 1000 or more")
    return ExporterOptions(
        collectors=collectors, collect_interval_ms=collect_interval, xid_window_ms=xid_window,
        clock_events_window_ms=clock_window, hostname=None if no_hostname else hostname,
        uuid_label="uuid" if old_namespace else "UUID", replace_blanks_in_model_name=replace_blanks,
        driver_version=os.environ.get("LLMOBS_SIM_DRIVER_VERSION") or exposition.DRIVER_VERSION,
        release=check_release(release or PINNED_RELEASE, "--exporter-release"))


def _node_name() -> str:
    return os.environ.get("NODE_NAME") or socket.gethostname()


@sim_app.command()
def dcgm(
    collectors: Collectors = Path("/etc/dcgm-exporter/default-counters.csv"),
    address: Address = f":{PORTS['dcgm']}",
    collect_interval: CollectInterval = exposition.COLLECT_INTERVAL_MS,
    xid_window: XidWindow = exposition.XID_WINDOW_MS,
    clock_window: ClockWindow = exposition.CLOCK_EVENTS_WINDOW_MS,
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
    from llmobs.sim import webconfig
    from llmobs.sim.host import HostConfig, parse_address

    def config() -> HostConfig:
        options = _exporter_options(collectors, collect_interval, xid_window, clock_window, no_hostname,
                                    old_namespace, replace_blanks, _node_name(), exporter_release)
        return HostConfig(name=_node_name(), gpu_model=gpu_model, gpus=gpus, exporter=options,
                          exporter_address=parse_address(address), fault_port=fault_port,
                          exporter_web=webconfig.load(web_config))

    _run_host(config, verbose)


@sim_app.command()
def vllm(
    model: Annotated[str, typer.Option("--model", envvar="LLMOBS_SIM_MODEL", help="served model name")],
    port: Annotated[int, typer.Option("--port", envvar="LLMOBS_SIM_PORT")] = PORTS["vllm"],
    gpus: Annotated[str, typer.Option("--gpus", envvar="LLMOBS_SIM_ENGINE_GPUS", help="GPU indexes, e.g. 0,1")] = "0",
    params_b: Annotated[float, typer.Option("--params-b", envvar="LLMOBS_SIM_PARAMS_B", help="model size, B")] = 8.0,
    rps: Annotated[float, typer.Option("--rps", envvar="LLMOBS_SIM_RPS", help="mean requests per second")] = 2.0,
    vllm_version: Annotated[str, typer.Option("--vllm-version", envvar="LLMOBS_SIM_VLLM_VERSION",
                                              help="the vLLM release to imitate: 0.33.0 or 0.10.2")] = "0.33.0",
    engine_kind: Annotated[str, typer.Option("--engine", envvar="LLMOBS_SIM_ENGINE",
                                             help="whose /metrics to serve: vllm, sglang or trtllm")] = "vllm",
    gpu_model: GpuModel = "H100-SXM",
    fault_port: FaultPort = SIM_CONTROL_PORT,
    verbose: Verbose = False,
) -> None:
    """One inference server (OpenAI API and /metrics) driven by simulated traffic: vLLM's, or the same
    model behind SGLang's or TensorRT-LLM's page (`--engine`)."""
    from llmobs.sim.host import HostConfig
    from llmobs.sim.vllm import EngineConfig

    try:
        indexes = tuple(int(part) for part in gpus.split(",") if part.strip())
    except ValueError:
        _fail(ConfigError("--gpus", f"{gpus!r} is not a list of GPU indexes", "write e.g. 0,1"))

    def config() -> HostConfig:
        engine = EngineConfig(model=model, port=port, gpus=indexes, params_b=params_b, rps=rps,
                              vllm_version=vllm_version, engine=engine_kind)
        return HostConfig(name=_node_name(), gpu_model=gpu_model, gpus=max(indexes) + 1, engines=(engine,),
                          fault_port=fault_port)

    _run_host(config, verbose)


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
    collect_interval: CollectInterval = exposition.COLLECT_INTERVAL_MS,
    xid_window: XidWindow = exposition.XID_WINDOW_MS,
    clock_window: ClockWindow = exposition.CLOCK_EVENTS_WINDOW_MS,
    no_hostname: NoHostname = False,
    fault_port: FaultPort = SIM_CONTROL_PORT,
    verbose: Verbose = False,
) -> None:
    """A whole simulated GPU server of the lab: dcgm-exporter and its vLLM servers in one process,
    the engines' load driving the GPUs."""
    from llmobs.settings import load_settings_file
    from llmobs.sim.host import HostConfig, parse_address
    from llmobs.sim.topology import engine_configs, load_topology

    def config() -> HostConfig:
        lab_host = load_topology(topology).host(name)
        if lab_host.sim is None:
            raise ConfigError(f"hosts.{name}.sim", "is not set: this host is not simulated",
                              "add `sim: {gpu_model: ..., gpus: ...}` to it")
        options = _exporter_options(collectors, collect_interval, xid_window, clock_window, no_hostname,
                                    False, False, os.environ.get("NODE_NAME") or name,
                                    lab_host.sim.dcgm_exporter)
        return HostConfig(
            name=name, gpu_model=lab_host.sim.gpu_model, gpus=lab_host.sim.gpus,
            engines=engine_configs(lab_host, load_settings_file(settings)),
            exporter=options if lab_host.sim.gpus else None, exporter_address=parse_address(address),
            fault_port=fault_port)

    _run_host(config, verbose)


@sim_app.command("chat-load")
def chat_load(
    url: Annotated[str, typer.Option("--url", help="the engine's base URL")] = "http://127.0.0.1:8080",
    model: Annotated[str, typer.Option("--model", help="the model name it serves")] = "llmobs-tiny-llama",
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="seconds between requests")] = 2.0,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 24,
    duration: Annotated[float, typer.Option("--duration", min=1, help="seconds before it stops")] = 6 * 3600.0,
    verbose: Verbose = False,
) -> None:
    """Send a real engine chat completions at a steady pace (the lab's load generator for llama.cpp)."""
    from llmobs.sim.chat_load import ChatLoad

    load = ChatLoad(url.rstrip("/"), model, interval, max_tokens, duration)
    worker = threading.Thread(target=load.run, name="chat-load", daemon=True)
    _serve_until_stopped(worker.start, load.stopped.set, verbose, until=worker)


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
