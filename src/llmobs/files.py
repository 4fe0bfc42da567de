"""Writing files so that a reader never sees half of one: a temporary file beside the target, then one
rename. `llmobs generate` and the lab's configuration reload both write through `write_atomic`. And
configuration trees that a service running as nobody reads (`write_tree`, `make_readable`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace `path` with `text` in one rename (parent directories are created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                     delete=False) as handle:
        handle.write(text)
    os.chmod(handle.name, mode)
    os.replace(handle.name, path)


def make_readable(directory: Path) -> None:
    """Directories 0755 and files 0644 under `directory`: the services read their configuration as nobody."""
    for path in [directory, *directory.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def write_tree(directory: Path, files: dict[str, str]) -> None:
    """Write `files` ({relative path: text}) under `directory`, then make the whole tree readable."""
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    make_readable(directory)
