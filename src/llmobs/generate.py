"""`llmobs generate`: every generated file of the kit, from the catalog and one settings file.

ARTIFACTS is the registry: each entry names a producer, `module:function` taking the validated
`Settings` and returning {repo-relative path: text}, and the files it owns (globs), so files it no
longer produces are removed (or reported by `--check`). Other areas register with one line.

Generation is atomic: every producer runs in memory first; on any ConfigError nothing is written and
all the errors are printed. `--check` writes nothing and exits 1 when a file differs (drift).
"""

from __future__ import annotations

import importlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from llmobs.errors import ConfigError, ConfigErrors
from llmobs.settings import Settings, as_settings, load_settings_file

LAB_SETTINGS = Path("compose/lab-settings.yml")
console = Console()


@dataclass(frozen=True)
class Artifact:
    name: str
    producer: str  # "module:function", (Settings) -> {path: text}
    owns: tuple[str, ...]  # globs (relative to the output directory) of the files it owns

    def render(self, settings: Settings) -> Mapping[str, str]:
        module, _, function = self.producer.partition(":")
        produce: Callable[[Settings], Mapping[str, str]] = getattr(importlib.import_module(module), function)
        return produce(settings)


ARTIFACTS: tuple[Artifact, ...] = (
    Artifact("prometheus rules", "llmobs.generate:_rule_files", ("prometheus/rules/*.yml",)),
    Artifact("promtool unit tests", "llmobs.generate:_rule_tests", ("prometheus/tests/*.test.yml",)),
    Artifact("alertmanager", "llmobs.generate:_alertmanager", ("alertmanager/alertmanager.yml",
                                                              "alertmanager/templates/*.tmpl")),
    Artifact("dcgm-exporter counters", "llmobs.generate:_dcgm_counters", ("compose/dcgm-exporter/counters.csv",)),
    Artifact("docs", "llmobs.docs_gen:render_docs", ("docs/metrics-catalog.md", "docs/alerts.md",
                                                      "docs/configuration.md", "docs/runbooks/*.md")),
    Artifact("grafana", "llmobs.dashboards:dashboard_artifacts", ("grafana/dashboards/*.json",
                                                                  "grafana/provisioning/*/*.yaml")),
    Artifact("prometheus config (lab)", "llmobs.sim.topology:render_lab_prometheus",
             ("prometheus/prometheus.yml", "prometheus/targets/*.yml")),
    Artifact("lab GPU servers (compose)", "llmobs.roles:lab_gpu_services", ("compose/services/gpu-*.yaml",)),
    Artifact("role READMEs", "llmobs.roles:role_readmes", ("roles/*/README.md",)),
)


def _rule_files(settings: Settings) -> dict[str, str]:
    from llmobs import rules

    return {f"{rules.RULES_DIR}/{name}": text for name, text in rules.render_rule_files(settings).items()}


def _rule_tests(settings: Settings) -> dict[str, str]:
    from llmobs import rules

    return {f"{rules.TESTS_DIR}/{name}": text for name, text in rules.render_rule_tests(settings).items()}


def _alertmanager(settings: Settings) -> dict[str, str]:
    from llmobs import alertmanager

    files = {alertmanager.CONFIG_FILE: alertmanager.render_config(settings)}
    files.update({f"{alertmanager.TEMPLATES_DIR}/{name}": text
                  for name, text in alertmanager.render_templates(settings).items()})
    return files


def _dcgm_counters(settings: Settings) -> dict[str, str]:
    from llmobs import dcgm_csv

    return {dcgm_csv.PATH: dcgm_csv.render(settings)}


def render_all(settings: Settings | dict[str, Any] | None = None,
               artifacts: tuple[Artifact, ...] = ARTIFACTS) -> dict[str, str]:
    """Every generated file {path: text}; raises ConfigErrors (all producers' errors) before returning."""
    settings = as_settings(settings)
    files: dict[str, str] = {}
    errors: list[ConfigError] = []
    for artifact in artifacts:
        try:
            produced = artifact.render(settings)
        except ConfigErrors as error:
            errors += error.errors
            continue
        except ConfigError as error:
            errors.append(error)
            continue
        for path, text in produced.items():
            if path in files:
                raise ValueError(f"{artifact.name} and another producer both generate {path}")
            files[path] = text
    if errors:
        raise ConfigErrors(errors)
    return files


@dataclass(frozen=True)
class Plan:
    """What writing `files` under `out` changes."""

    changed: list[str]  # new or different
    stale: list[str]  # owned by a producer, no longer produced

    @property
    def drift(self) -> bool:
        return bool(self.changed or self.stale)


def plan(out: Path, files: Mapping[str, str], artifacts: tuple[Artifact, ...] = ARTIFACTS) -> Plan:
    changed = [path for path, text in sorted(files.items())
               if not (out / path).is_file() or (out / path).read_text(encoding="utf-8") != text]
    owned = {p.relative_to(out).as_posix() for a in artifacts for glob in a.owns for p in out.glob(glob) if p.is_file()}
    return Plan(changed, sorted(owned - set(files)))


def write(out: Path, files: Mapping[str, str], todo: Plan) -> None:
    """Write changed files atomically (temporary file, then rename) and remove stale ones."""
    for path in todo.changed:
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.",
                                         delete=False) as handle:
            handle.write(files[path])
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, target)
    for path in todo.stale:
        (out / path).unlink()


def _settings_file(settings: Path | None, out: Path) -> Path | None:
    if settings is not None:
        return settings
    lab = out / LAB_SETTINGS
    return lab if lab.is_file() else None


def generate(
    settings: Annotated[Path | None, typer.Option(
        "--settings", exists=True, dir_okay=False,
        help="Settings file (YAML) merged over the defaults. Default: <out>/compose/lab-settings.yml if present.",
    )] = None,
    out: Annotated[Path, typer.Option("--out", file_okay=False, help="Directory to write into (the repository).")]
    = Path("."),
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if any generated file differs.")]
    = False,
) -> None:
    """Generate rules, rule tests, Alertmanager config, DCGM counters, dashboards and docs."""
    source = _settings_file(settings, out)
    try:
        files = render_all(load_settings_file(source))
    except ConfigError as error:
        console.print(f"[red]invalid input, nothing written[/red] (settings: {source or 'defaults'}):")
        for item in getattr(error, "errors", [error]):
            console.print(f"  {item}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    todo = plan(out, files)
    if check:
        if todo.drift:
            console.print("[red]generated files differ from `llmobs generate`[/red]"
                          f" (settings: {source or 'defaults'}):")
            for path in todo.changed:
                console.print(f"  changed: {path}", highlight=False)
            for path in todo.stale:
                console.print(f"  stale:   {path}", highlight=False)
            console.print("Run `llmobs generate` and commit the result.")
            raise typer.Exit(1)
        console.print(f"{len(files)} generated files up to date (settings: {source or 'defaults'}).")
        return
    write(out, files, todo)
    console.print(f"{len(todo.changed)} written, {len(todo.stale)} removed, "
                  f"{len(files) - len(todo.changed)} unchanged (settings: {source or 'defaults'}).")


# ------------------------------------------------------------------------------------------ benchmark
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print timings (no pass/fail).")


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
    started = time.perf_counter()
    settings = as_settings(fleet_settings(hosts))
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
            files.update(artifact.render(settings))
            per_artifact[artifact.name].append(time.perf_counter() - start)
        totals.append(time.perf_counter() - run_start)
        size, count = sum(len(t) for t in files.values()), len(files)
    for name, times in per_artifact.items():
        console.print(f"  {name:<28} min {min(times):.3f} s  median {statistics.median(times):.3f} s")
    console.print(f"render everything: min {min(totals):.3f} s, median {statistics.median(totals):.3f} s "
                  f"over {repeat} runs; {count} files, {size / 1e6:.2f} MB")
