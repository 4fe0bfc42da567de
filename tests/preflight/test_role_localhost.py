"""The gpu_preflight role run by ansible-playbook on localhost against each recorded host, through the
stand-in tools: it prints the expected verdicts, stops exactly when a check fails, and rejects bad
variables before it probes anything."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from gpu_recordings import FIXTURES, HOSTS, REPO, STAND_INS, expected

PLAYBOOK = Path(__file__).with_name("preflight_localhost.yml")
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")


def run_role(tmp: Path, host: str, *extra: str, **variables: Any) -> subprocess.CompletedProcess[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    extra_vars = tmp / "extra-vars.json"
    extra_vars.write_text(json.dumps({
        "fixture_bin": str(STAND_INS), "fixture_dir": str(FIXTURES / host),
        "gpu_preflight_report_file": str(tmp / "report.json"), "gpu_preflight_textfile_dir": str(tmp / "textfile"),
        "gpu_preflight_timer_dir": str(tmp / "timer"), "gpu_preflight_systemd_dir": str(tmp / "systemd"), **variables,
    }))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0", "PATH": f"{ANSIBLE_PLAYBOOK.parent}:{os.environ['PATH']}"}
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(PLAYBOOK), "-e", f"@{extra_vars}", *extra],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    """One ansible-playbook per recorded host, run side by side."""
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip(f"ansible-playbook is not installed beside {sys.executable}")
    root = tmp_path_factory.mktemp("preflight")

    def one(host: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        return run_role(root / host, host, **expected(host)["vars"]), root / host / "report.json"

    with ThreadPoolExecutor(max_workers=len(HOSTS)) as pool:
        return dict(zip(HOSTS, pool.map(one, HOSTS), strict=True))


@pytest.mark.parametrize("host", HOSTS)
def test_the_role_prints_the_expected_verdicts(runs: dict, host: str) -> None:
    done, report_file = runs[host]
    wanted = expected(host)["verdicts"]
    print(f"\n--- {host}\n" + "\n".join(json.loads(report_file.read_text())["lines"]))
    for check, verdict in wanted.items():
        assert re.search(rf"^\s*-?\s*'?{check}\s+{verdict}\s", done.stdout, re.M), \
            f"{host}: no printed line '{check} {verdict}'\n{done.stdout[-4000:]}"
    assert json.loads(report_file.read_text())["verdicts"] == wanted
    failing = [check for check, verdict in wanted.items() if verdict == "FAIL"]
    if failing:
        assert done.returncode != 0
        assert "GPU preflight failed on localhost" in done.stdout
        for check in failing:
            assert f"[{check}]" in done.stdout
    else:
        assert done.returncode == 0, done.stdout[-4000:]


def test_warn_policy_lets_the_play_go_on(tmp_path: Path) -> None:
    done = run_role(tmp_path, "rtx4090-x8", gpu_preflight_check_actions={"container_toolkit": "warn"},
                    **expected("rtx4090-x8")["vars"])
    assert done.returncode == 0, done.stdout[-4000:]
    assert re.search(r"container_toolkit\s+WARN\s", done.stdout)


def test_check_mode_runs_the_probe(tmp_path: Path) -> None:
    done = run_role(tmp_path, "h100-sxm-hgx", "--check", **expected("h100-sxm-hgx")["vars"])
    assert done.returncode == 0, done.stdout[-4000:]
    assert re.search(r"fabric_manager\s+PASS\s", done.stdout)
    assert not (tmp_path / "systemd").exists(), "check mode installs no timer"


def _changed(done: subprocess.CompletedProcess[str]) -> int:
    return int(re.search(r"localhost\s+:.*changed=(\d+)", done.stdout).group(1))


def test_the_timer_is_installed_once_and_writes_the_converges_textfile(tmp_path: Path) -> None:
    """The units, the program and its plan are installed; a second run (and one in check mode) changes nothing;
    the installed program, run as the timer runs it, rewrites nothing: its verdicts are the converge's."""
    host = "h100-sxm-hgx"
    first = run_role(tmp_path, host, **expected(host)["vars"])
    assert first.returncode == 0, first.stdout[-4000:]
    service = (tmp_path / "systemd" / "llmobs-gpu-preflight.service").read_text()
    assert f"ExecStart=/usr/bin/python3 -m llmobs.preflight.host --plan {tmp_path}/timer/gpu_preflight.json" in service
    assert "OnUnitActiveSec=15min" in (tmp_path / "systemd" / "llmobs-gpu-preflight.timer").read_text()
    for again in (run_role(tmp_path, host, **expected(host)["vars"]),
                  run_role(tmp_path, host, "--check", **expected(host)["vars"])):
        assert again.returncode == 0 and _changed(again) == 0, again.stdout[-4000:]
    env = {"PATH": f"{STAND_INS}:{os.environ['PATH']}", "LLMOBS_GPU_FIXTURE": str(FIXTURES / host),
           "PYTHONPATH": str(tmp_path / "timer")}
    timer = subprocess.run(["/usr/bin/python3", "-S", "-m", "llmobs.preflight.host", "--plan",
                            str(tmp_path / "timer" / "gpu_preflight.json")], env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert timer.returncode == 0, timer.stderr
    assert "llmobs_gpu_preflight.prom unchanged" in timer.stdout


@pytest.mark.parametrize(("variables", "message"), [
    ({"gpu_preflight_expected_model": "H200"}, "gpu_preflight_expected_model: 'H200' is not a GPU model"),
    ({"gpu_preflight_check_actions": {"persistance_mode": "warn"}}, "gpu_preflight_check_actions.persistance_mode"),
    ({"gpu_preflight_expected_gpu_count": "eight"}, "gpu_preflight_expected_gpu_count"),
])
def test_bad_variables_stop_the_play_before_the_probe(tmp_path: Path, variables: dict, message: str) -> None:
    done = run_role(tmp_path, "h100-sxm-hgx", **variables)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr
    assert "Collect nvidia-smi" not in done.stdout
