"""`llmobs bench ...`: benchmarks that print timings (no pass/fail), sized by their options."""

from __future__ import annotations

import statistics
import time
from typing import Annotated, Any

import typer
from rich.console import Console

from llmobs.generate import ARTIFACTS
from llmobs.settings import load_settings
from llmobs.workspace import Workspace

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print timings (no pass/fail).")
console = Console()


def fleet_settings(hosts: int, gpus_per_host: int = 8, engines_per_host: int = 2, models: int = 10) -> dict[str, Any]:
    """Settings of a synthetic fleet: `hosts` GPU servers, each with engines over its GPUs, and per-model
    SLO targets for every model."""
    per_engine = gpus_per_host // engines_per_host
    endpoints = {
        f"gpu-node-{h:03d}": [
            {"model": f"model-{(h * engines_per_host + e) % models}", "port": 8000 + e,
             "gpus": list(range(e * per_engine, (e + 1) * per_engine))}
            for e in range(engines_per_host)
        ]
        for h in range(hosts)
    }
    return {
        "vllm_endpoints": endpoints,
        "slo": {"models": {f"model-{m}": {"ttft_seconds": 2.5, "ttft_objective": 0.95} for m in range(models)}},
    }


@bench_app.command("generate")
def bench_generate(
    hosts: Annotated[int, typer.Option(help="GPU servers in the synthetic inventory.")] = 100,
    repeat: Annotated[int, typer.Option(min=1, help="Runs; min and median are printed.")] = 5,
) -> None:
    """Time `llmobs generate` in memory for a synthetic fleet (8 GPUs and 2 engines per host, 10 models
    with their own SLO targets): every registered artifact, nothing written."""
    workspace = Workspace.find()
    started = time.perf_counter()
    settings = load_settings(fleet_settings(hosts))
    console.print(f"settings for {hosts} hosts ({len(settings.vllm_endpoints)} engines, "
                  f"{sum(len(e.gpus) for e in settings.vllm_endpoints)} GPUs, {len(settings.slo.models)} models "
                  f"with own SLOs) validated in {time.perf_counter() - started:.3f} s")
    totals: list[float] = []
    per_artifact: dict[str, list[float]] = {a.name: [] for a in ARTIFACTS}
    size = count = 0
    for _ in range(repeat):
        run_start = time.perf_counter()
        files: dict[str, str] = {}
        for artifact in ARTIFACTS:
            start = time.perf_counter()
            files.update(artifact.render(settings, workspace))
            per_artifact[artifact.name].append(time.perf_counter() - start)
        totals.append(time.perf_counter() - run_start)
        size, count = sum(len(t) for t in files.values()), len(files)
    for name, times in per_artifact.items():
        console.print(f"  {name:<28} min {min(times):.3f} s  median {statistics.median(times):.3f} s")
    console.print(f"render everything: min {min(totals):.3f} s, median {statistics.median(totals):.3f} s "
                  f"over {repeat} runs; {count} files, {size / 1e6:.2f} MB")
