"""`llmobs prober ...`: the endpoint prober. `serve` exports the probes for Prometheus; `check` probes every
endpoint once and prints what a client saw (the same probe, for an operator or a deployment's smoke test).

The settings file is the kit's settings (`vllm_endpoints`, `endpoints`, `prober`, `slo`); API keys are read
from the files it names, never from the command line or the environment."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from llmobs.conventions import PORTS
from llmobs.errors import ConfigError

prober_app = typer.Typer(no_args_is_help=True, help="The outside-in endpoint prober (streamed chat completions).")
console = Console()

SettingsFile = Annotated[Path, typer.Option("--settings", envvar="LLMOBS_PROBER_SETTINGS",
                                            help="the kit's settings file (endpoints, prober, slo)")]


def _settings(path: Path):
    from llmobs.settings import load_settings_file

    try:
        return load_settings_file(path)
    except ConfigError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


@prober_app.command()
def serve(
    settings_file: SettingsFile = Path("/etc/llmobs/settings.yml"),
    listen_address: Annotated[str, typer.Option("--listen-address", envvar="LLMOBS_PROBER_LISTEN_ADDRESS",
                                                help="address /metrics listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="LLMOBS_PROBER_PORT")] = PORTS["prober"],
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Probe every declared endpoint at the configured interval and serve the results on /metrics."""
    from llmobs import catalog
    from llmobs.prober.exporter import Prober
    from llmobs.prober.exporter import serve as start
    from llmobs.sim.cli import _serve_until_stopped

    settings = _settings(settings_file)
    running: list[Prober] = []
    _serve_until_stopped(lambda: running.append(start(settings, catalog.load(), listen_address, port)),
                         lambda: [prober.stop() for prober in running], verbose)


@prober_app.command()
def check(settings_file: SettingsFile = Path("/etc/llmobs/settings.yml")) -> None:
    """Probe every declared endpoint once, print what a client saw; exit 1 when one fails."""
    from llmobs.prober.probe import probe, targets
    from llmobs.types import duration_seconds

    settings = _settings(settings_file)
    found = targets(settings.all_endpoints, settings.prober)
    results = [None] * len(found)

    def run(index: int) -> None:
        results[index] = probe(found[index], settings.prober, duration_seconds(settings.prober.timeout))

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(found))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Folded, never cut: the detail is what an operator reads.
    table = Table(*(Column(name, overflow="fold") for name in (
        "endpoint", "model", "result", "HTTP", "TTFT s", "total s", "tokens", "detail")))
    for target, result in zip(found, results, strict=True):
        table.add_row(target.url, target.endpoint.model, result.result, str(result.status),
                      f"{result.ttft:.3f}" if result.ttft is not None else "-", f"{result.duration:.3f}",
                      str(result.tokens), result.detail)
    console.print(table)
    if not all(result.success for result in results):
        raise typer.Exit(1)
