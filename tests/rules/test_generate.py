"""`llmobs generate`: committed output equals the generator's, determinism, `--check`, atomicity."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rules_support import LAB_SETTINGS, REPO, WORKSPACE, run, write_tree

from llmobs.generate import ARTIFACTS, plan, render_all

LLMOBS = Path(sys.executable).parent / "llmobs"


def test_committed_output_is_what_the_generator_produces(lab_settings) -> None:
    todo = plan(REPO, render_all(lab_settings, WORKSPACE))
    assert not todo.drift, (
        "generated files differ from the committed ones; run `llmobs generate` and commit:\n"
        + "\n".join([f"  changed: {p}" for p in todo.changed] + [f"  stale: {p}" for p in todo.stale]))


def test_check_exits_non_zero_and_lists_drifted_files(tmp_path: Path, lab_settings) -> None:
    files = render_all(lab_settings, WORKSPACE)
    write_tree(tmp_path, files)
    shutil.copy(LAB_SETTINGS, tmp_path / "compose" / "lab-settings.yml")
    clean = run(LLMOBS, "generate", "--out", tmp_path, "--check")
    assert clean.returncode == 0, clean.stdout + clean.stderr

    edited = tmp_path / "prometheus" / "rules" / "alerts.yml"
    edited.write_text(edited.read_text().replace("for: 0s", "for: 1m", 1))
    (tmp_path / "prometheus" / "rules" / "old.yml").write_text("groups: []\n")
    drift = run(LLMOBS, "generate", "--out", tmp_path, "--check")
    assert drift.returncode == 1
    assert "changed: prometheus/rules/alerts.yml" in drift.stdout
    assert "stale:   prometheus/rules/old.yml" in drift.stdout

    fixed = run(LLMOBS, "generate", "--out", tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert not (tmp_path / "prometheus" / "rules" / "old.yml").exists()
    assert edited.read_text() == files["prometheus/rules/alerts.yml"]


def test_bad_settings_write_nothing(tmp_path: Path) -> None:
    settings = tmp_path / "bad.yml"
    settings.write_text("slo:\n  defaults:\n    ttft_seconds: 0.9\nalertmanager:\n  default_receiver: pager\n")
    out = tmp_path / "out"
    out.mkdir()
    result = run(LLMOBS, "generate", "--settings", settings, "--out", out)
    assert result.returncode == 2
    assert "slo.defaults.ttft_seconds: 0.9 is not a bucket boundary" in result.stdout
    assert "use a boundary such as 1.0" in result.stdout
    assert "alertmanager.default_receiver: unknown receiver 'pager'" in result.stdout
    assert list(out.iterdir()) == [], "nothing may be written when the input is invalid"


def _digest_in_fresh_interpreter(seed: str) -> str:
    code = ("import hashlib, json; from llmobs.generate import render_all;"
            " from llmobs.settings import load_settings_file; from llmobs.workspace import Workspace;"
            " from pathlib import Path;"
            f" files = render_all(load_settings_file(Path({str(LAB_SETTINGS)!r})), Workspace(Path({str(REPO)!r})));"
            " print(hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": seed}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_output_is_deterministic_across_processes(lab_settings) -> None:
    """Two fresh processes with different hash seeds (so set and dict iteration orders differ), and this one,
    produce the same bytes: the rules, the tests, the dashboards, the docs, everything."""
    here = hashlib.sha256(json.dumps(render_all(lab_settings, WORKSPACE), sort_keys=True).encode()).hexdigest()
    assert _digest_in_fresh_interpreter("1") == _digest_in_fresh_interpreter("2") == here


def test_every_artifact_owns_what_it_writes(lab_settings) -> None:
    files = render_all(lab_settings, WORKSPACE)
    for path in files:
        owners = [a.name for a in ARTIFACTS if any(Path(path).match(glob) for glob in a.owns)]
        assert len(owners) == 1, f"{path} must be owned by exactly one artifact (owns globs), got {owners}"


def test_bench_prints_timings() -> None:
    result = run(LLMOBS, "bench", "generate", "--hosts", "5", "--repeat", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "render everything: min" in result.stdout
    assert "settings for 5 hosts (10 engines, 40 GPUs" in result.stdout
