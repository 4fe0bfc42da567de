"""Helpers of the rules tests (a uniquely named module: tests/*/conftest.py files would clash)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from llmobs.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
WORKSPACE = Workspace(REPO)
LAB_SETTINGS = WORKSPACE.lab_settings


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian's prometheus / prometheus-alertmanager; `llmobs setup`)")
    return path


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


def run(*command: str | Path, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout)
