"""The `llmobs` command line. Each area registers its own sub-commands here."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from llmobs.bench import bench_app
from llmobs.dashboards.cli import app as dashboards_app
from llmobs.generate.cli import generate
from llmobs.lab.cli import fault_app, lab_app
from llmobs.prober.cli import prober_app
from llmobs.sim.cli import sim_app

app = typer.Typer(no_args_is_help=True, help="LLM observability stack: generate, simulate, set up and check.")
console = Console()
app.command()(generate)
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(sim_app, name="sim")
app.add_typer(fault_app, name="fault")
app.add_typer(lab_app, name="lab")
app.add_typer(bench_app, name="bench")
app.add_typer(prober_app, name="prober")


@app.command()
def setup(
    images: bool = typer.Option(True, help="Also make every container image available (stand-ins if needed)."),
) -> None:
    """Install and start what the lab and the tests need: Docker Engine, Compose, promtool, images."""
    from llmobs import setup as host_setup
    from llmobs.images import ImageError

    try:
        resolved = host_setup.run(lambda message: console.print(f"  {message}"), with_images=images)
    except (host_setup.SetupError, ImageError) as error:
        console.print(f"[red]set-up failed:[/red] {error}")
        raise typer.Exit(1) from None
    if resolved:
        table = Table("variable", "image", "origin", title="Images")
        for item in resolved:
            table.add_row(item.variable, item.image or "[yellow]unavailable[/yellow]", item.origin)
        console.print(table)


def main() -> None:  # pragma: no cover - console entry point
    app()
