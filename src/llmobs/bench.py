"""`llmobs bench ...`: benchmarks that print timings (no pass/fail), sized by their options."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from llmobs.fleetbench import report
from llmobs.fleetbench.run import Options, build, run_dir
from llmobs.fleetbench.synth import fleet_settings
from llmobs.generate import ARTIFACTS
from llmobs.settings import load_settings
from llmobs.workspace import Workspace

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print timings (no pass/fail).")
console = Console()


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


@bench_app.command("fleet")
def bench_fleet(
    hosts: Annotated[list[int], typer.Option(help="GPU servers (8 GPUs each); repeat for a growth run.")],
    hours: Annotated[float, typer.Option(min=0.25, help="Hours of data (dashboards open on 3 h).")] = 3.0,
    engines_per_host: Annotated[int, typer.Option(min=1, max=8, help="vLLM servers per host.")] = 2,
    repeat: Annotated[int, typer.Option(min=5, help="Runs of each query; p50 and p95 are printed.")] = 5,
    workdir: Annotated[Path, typer.Option(help="Where each run's TSDB and result.json go (relative: to the "
                                          "checkout).")] = Path(".cache/bench-fleet"),
    reuse: Annotated[bool, typer.Option(help="Measure again the TSDB the last run of this N and H built (while "
                                       "its data is fresh: up to its --ahead-minutes, default 30, after that run "
                                       "started).")] = False,
    ahead_minutes: Annotated[float | None, typer.Option(min=0, help="How far the data runs past the build's start "
                                                 "(default 30 min, at most half the span): more than the "
                                                 "run's build and measuring take, or the live figures are "
                                                 "stale.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Draw the growth curve of every run's result here (PNG).")] = None,
) -> None:
    """Build a real TSDB for a synthetic fleet (llmobs.sim's series, promtool's backfill, recording rules
    backfilled), then time every dashboard panel, the official dashboards' raw queries and every rule group
    with a live Prometheus 3.5 over it. Prints a table per run and one summary line per N."""
    wide = Console(width=160)
    lines, results = [], []
    for n in hosts:
        options = Options(n, hours, engines_per_host, repeat, workdir=workdir, reuse=reuse,
                          ahead_s=None if ahead_minutes is None else ahead_minutes * 60)
        result = build(options, console.print)
        data = json.loads(json.dumps(asdict(result)))
        report.print_tables(data, wide)
        lines.append(report.summary_line(data))
        results.append(run_dir(options) / "result.json")
    for line in lines:
        print(line)
    if plot:
        report.plot_growth({"this run": results}, plot)
        console.print(f"growth curve: {plot}")
