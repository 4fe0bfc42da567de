"""`llmobs generate`: write (or, with --check, compare) every generated file of the kit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from llmobs.errors import ConfigError
from llmobs.generate import LAB_SETTINGS, Plan, plan, render_all, write
from llmobs.settings import load_settings_file
from llmobs.workspace import Workspace, WorkspaceError

console = Console()


def _settings_file(settings: Path | None, out: Path) -> Path | None:
    if settings is not None:
        return settings
    lab = out / LAB_SETTINGS
    return lab if lab.is_file() else None


def _report_drift(todo: Plan, source: str) -> None:
    console.print(f"[red]generated files differ from `llmobs generate`[/red] (settings: {source}):")
    for path in todo.changed:
        console.print(f"  changed: {path}", highlight=False)
    for path in todo.stale:
        console.print(f"  stale:   {path}", highlight=False)
    console.print("Run `llmobs generate` and commit the result.")


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
    described = str(source) if source else "defaults"
    try:
        workspace = Workspace.find()
    except WorkspaceError as error:
        console.print(f"[red]nothing written:[/red] {error}")
        raise typer.Exit(2) from None
    try:
        files = render_all(load_settings_file(source), workspace)
    except ConfigError as error:
        console.print(f"[red]invalid input, nothing written[/red] (settings: {described}):")
        for item in error.all:
            console.print(f"  {item}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    todo = plan(out, files)
    if check:
        if todo.drift:
            _report_drift(todo, described)
            raise typer.Exit(1)
        console.print(f"{len(files)} generated files up to date (settings: {described}).")
        return
    write(out, files, todo)
    console.print(f"{len(todo.changed)} written, {len(todo.stale)} removed, "
                  f"{len(files) - len(todo.changed)} unchanged (settings: {described}).")
