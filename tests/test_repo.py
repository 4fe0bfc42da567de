"""Repository-wide checks: linters, and the README's promises about its two commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([str(BIN / "ruff"), "check", "."], id="ruff"),
        pytest.param([str(BIN / "yamllint"), "--strict", "."], id="yamllint"),
        pytest.param([str(BIN / "ansible-lint"), "--profile", "production", "--offline"], id="ansible-lint"),
    ],
)
def test_linter_passes(command: list[str]) -> None:
    result = _run(*command)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-6000:]}{result.stderr[-3000:]}"


def _readme_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```(?:sh|bash|console)\n(.+?)\n```", quick_start, flags=re.M | re.S)


def test_readme_gives_exactly_two_setup_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2, f"the Quick start must show exactly two commands, found {commands}"
    assert commands[0].strip().endswith("./kit lab") and commands[1].strip().endswith("./kit test")


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    test_command = _readme_commands()[1].strip().split("&&")[-1].strip()
    assert re.search(rf"^{re.escape(test_command)}\b", ci, flags=re.M), f".ci/run must run `{test_command}`"
