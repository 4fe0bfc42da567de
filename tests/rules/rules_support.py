"""Helpers of the rules tests (a uniquely named module: tests/*/conftest.py files would clash)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from llmobs import tools
from llmobs.rules import render_rule_files
from llmobs.settings import load_settings
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


def within(record: str, selector: Mapping[str, str], value: float | tuple[float, float],
           kept: Mapping[str, str] | None = None) -> dict:
    """A promql_expr_test: `record`{selector} is one series with labels `kept` (default: the selector's),
    within 1e-9 of `value` or of the (low, high) range: floating-point sums differ in the last digit
    between promtool releases."""
    match = ", ".join(f'{k}="{v}"' for k, v in selector.items())
    labels = ", ".join(f'{k}="{v}"' for k, v in sorted((kept or selector).items()))
    series = f"{record}{{{match}}}"
    low, high = value if isinstance(value, tuple) else (value, value)
    return {"expr": f"({series} >= bool {low - 1e-9!r}) * ({series} <= bool {high + 1e-9!r})", "eval_time": "10m",
            "exp_samples": [{"labels": f"{{{labels}}}", "value": 1}]}


def promtool_recording_test(promtool: str, root: Path, name: str, settings: Mapping, input_series: list[dict],
                            checks: list[dict]) -> subprocess.CompletedProcess:
    """Runs `checks` (promql_expr_test entries) over `input_series` with the recording, inventory and price
    rules that `settings` render, at a 1m interval, with the real promtool."""
    files = {f"rules/{rule_file}": text for rule_file, text in render_rule_files(load_settings(settings)).items()}
    test = {"rule_files": [f"rules/{rule_file}" for rule_file in ("recording.yml", "inventory.yml", "prices.yml")],
            "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": input_series, "promql_expr_test": checks}]}
    files[name] = yaml.safe_dump(test, sort_keys=False)
    return run(promtool, "test", "rules", name, cwd=write_tree(root, files))
