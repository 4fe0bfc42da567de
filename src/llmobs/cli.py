"""The `llmobs` command line. Each area registers its own sub-commands here."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="LLM observability stack: generate, simulate, set up and check.")


def main() -> None:  # pragma: no cover - console entry point
    app()
