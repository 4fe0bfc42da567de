"""`llmobs dashboards`: render the dashboards and provisioning for any settings, or lint dashboard JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, help="Grafana dashboards: render, lint and probe.")
console = Console()
SettingsOption = Annotated[Path | None, typer.Option(help="Settings YAML merged over the defaults.")]
DashboardFiles = Annotated[list[Path], typer.Argument(help="Dashboard JSON files.")]


@app.command()
def render(
    out: Annotated[Path, typer.Option(help="Directory to write grafana/dashboards and grafana/provisioning under.")],
    settings: SettingsOption = None,
    prometheus_url: Annotated[str, typer.Option(help="Prometheus URL as Grafana reaches it.")]
    = "http://prometheus:9090",
    alertmanager_url: Annotated[str, typer.Option(help="Alertmanager URL as Grafana reaches it.")]
    = "http://alertmanager:9093",
    dashboards_path: Annotated[str, typer.Option(help="Where Grafana finds the dashboard JSON (in its container).")]
    = "/etc/grafana/dashboards",
) -> None:
    """Write the dashboards and the provisioning files for these settings (nothing on error)."""
    from llmobs.dashboards import dashboard_artifacts
    from llmobs.dashboards.provisioning import Provisioning
    from llmobs.errors import ConfigError
    from llmobs.settings import load_settings_file

    try:
        files = dashboard_artifacts(load_settings_file(settings), Provisioning.from_mapping({
            "prometheus_url": prometheus_url, "alertmanager_url": alertmanager_url,
            "dashboards_path": dashboards_path,
        }))
    except ConfigError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    for path, text in files.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        console.print(f"wrote {target}")


@app.command()
def lint(
    files: DashboardFiles,
    settings: SettingsOption = None,
) -> None:
    """Check dashboard JSON: panels have title, unit and description; queries parse, use defined variables
    and select only catalog metrics (with their labels) or recording rules."""
    from llmobs.dashboards import context
    from llmobs.dashboards.lint import lint_dashboard
    from llmobs.settings import load_settings_file

    known = context(load_settings_file(settings)).known_series()
    problems = 0
    for path in files:
        for error in lint_dashboard(json.loads(path.read_text(encoding="utf-8")), known):
            problems += 1
            console.print(f"{path}: {error}", markup=False)
    if problems:
        console.print(f"[red]{problems} problem(s)[/red]")
        raise typer.Exit(1)
    console.print(f"{len(files)} dashboard(s) clean")


@app.command()
def probe(
    files: DashboardFiles,
    prometheus_url: Annotated[str, typer.Option(help="Prometheus to query.")] = "http://127.0.0.1:9090",
) -> None:
    """List the panel queries that return no data from this Prometheus now (variables at 'All')."""
    from llmobs.dashboards.live import empty_queries

    dashboards = [json.loads(path.read_text(encoding="utf-8")) for path in files]
    empty = empty_queries(prometheus_url, dashboards)
    for query in empty:
        console.print(f"{query.dashboard} / \"{query.panel}\" / {query.ref}: no data: {query.expr}", markup=False,
                      soft_wrap=True)
    console.print(f"{len(empty)} query(ies) without data")


@app.command()
def preview(
    files: DashboardFiles,
    prometheus_url: Annotated[str, typer.Option(help="Prometheus to query.")] = "http://127.0.0.1:9090",
    range_: Annotated[str, typer.Option("--range", help="Time range up to now, e.g. 15m, 1h.")] = "15m",
    out: Annotated[Path, typer.Option(help="PNG to write (one dashboard), or a directory for <uid>.png each.")]
    = Path("."),
) -> None:
    """Draw each dashboard as a PNG from this Prometheus' answers to its panel queries (variables at 'All'):
    a preview where no Grafana runs, not a Grafana screenshot."""
    from llmobs.catalog import duration_seconds
    from llmobs.dashboards.preview import render

    try:
        range_s = duration_seconds(range_)
    except ValueError as error:
        console.print(f"[red]error:[/red] --range: {error}")
        raise typer.Exit(1) from None
    if out.suffix.lower() == ".png" and len(files) > 1:
        console.print("[red]error:[/red] --out names one PNG but several dashboards were given: pass a directory")
        raise typer.Exit(1)
    for path in files:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        target = out if out.suffix.lower() == ".png" else out / f"{dashboard.get('uid', path.stem)}.png"
        result = render(dashboard, prometheus_url, target, range_s)
        empty = result.empty()
        console.print(f"wrote {target} ({target.stat().st_size // 1024} KiB): {len(result.panels)} panels, "
                      f"{len(empty)} without data" + "".join(f"\n  No data: {title}" for title in empty),
                      markup=False)
