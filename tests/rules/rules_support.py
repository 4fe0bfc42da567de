"""Helpers of the rules tests (a uniquely named module: tests/*/conftest.py files would clash)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from llmobs import tools
from llmobs.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
WORKSPACE = Workspace(REPO)
LAB_SETTINGS = WORKSPACE.lab_settings


def tool_versions(name: str) -> list[str]:
    """Every version of promtool or amtool the kit tests with, the pinned image's own first."""
    return [tool.version for tool in tools.pinned() if tool.name == name]


def tool(name: str, version: str | None = None) -> str:
    """The path of the pinned `name` (llmobs.tools) of `version`, by default the pinned image's own."""
    wanted = version or tool_versions(name)[0]
    found = next((t for t in tools.pinned() if t.name == name and t.version == wanted), None)
    if found is None or not found.path.is_file():
        pytest.skip(f"{name} {wanted} is not in {tools.TOOLS_DIR} (`llmobs setup` unpacks it from Debian)")
    return str(found.path)


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


def run(*command: str | Path, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout)
