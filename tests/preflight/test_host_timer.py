"""The periodic preflight on the host: the shipped copy of the package's stdlib-only modules (llmobs.preflight.
host), run by the system's python3 without site-packages against each recorded host through the stand-in
tools, writes the same textfile as the controller's path (the role's probe, judge and textfile filters); its
systemd units pass `systemd-analyze verify`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from gpu_recordings import FIXTURES, HOSTS, STAND_INS, probe, settings

from llmobs.errors import ConfigErrors
from llmobs.preflight import judge, plan, textfile
from llmobs.preflight.timer import UNIT, timer_files

SYSTEM_PYTHON = Path("/usr/bin/python3")
TIMER = {"gpu_preflight_timer_interval": "15min", "gpu_preflight_timer_dir": "/opt/llmobs/gpu-preflight",
         "gpu_preflight_textfile_dir": "/var/lib/node_exporter/textfile_collector",
         "gpu_preflight_python": "/usr/bin/python3", "gpu_preflight_systemd_dir": "/etc/systemd/system"}


def _install(root: Path, host: str, textfile_dir: Path) -> Path:
    """What the role installs under gpu_preflight_timer_dir, for a recorded host; returns the plan's path."""
    probe_options = {"nvidia_smi": "", "procfs": str(FIXTURES / host / "proc"), "timeout": 60}
    installed = timer_files({**TIMER, "gpu_preflight_textfile_dir": str(textfile_dir)}, plan(settings()),
                            probe_options, host)
    for path, text in installed["files"].items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root / "gpu_preflight.json"


def _run_on_host(root: Path, fixture: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """The timer's command, by the system python3 with no site-packages (-S) and no PYTHON* variables (-E),
    on the recorded host `fixture` (the stand-in tools replay it)."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 without the kit's packages")
    env = {"PATH": f"{STAND_INS}:{os.environ['PATH']}", "LLMOBS_GPU_FIXTURE": str(fixture)}
    return subprocess.run([str(SYSTEM_PYTHON), "-S", "-E", "-m", "llmobs.preflight.host", "--plan", str(config)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("host", HOSTS)
def test_the_host_program_writes_what_the_controller_path_writes(tmp_path: Path, host: str) -> None:
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()
    config = _install(tmp_path / "program", host, textfile_dir)
    done = _run_on_host(tmp_path / "program", FIXTURES / host, config)
    assert done.returncode == 0, done.stderr
    controller = textfile.render(judge(probe(host), plan(settings()), host))
    written = textfile_dir / textfile.FILE_NAME
    assert written.read_text() == controller
    assert oct(written.stat().st_mode & 0o777) == "0o644"
    assert f"{written} rewritten" in done.stdout
    again = _run_on_host(tmp_path / "program", FIXTURES / host, config)
    assert f"{written} unchanged" in again.stdout, "an unchanged verdict leaves the file (and its mtime) alone"
    assert [p.name for p in textfile_dir.iterdir()] == [textfile.FILE_NAME], "no temporary file is left"


def test_a_regression_between_converges_reaches_the_textfile(tmp_path: Path) -> None:
    """The timer sees what changed on the host since the converge: here the fabric manager stopped."""
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()
    host = "h100-sxm-hgx"
    fixture = tmp_path / "fixture"
    shutil.copytree(FIXTURES / host, fixture, symlinks=True)
    config = _install(tmp_path / "program", host, textfile_dir)
    data = json.loads(config.read_text())
    data["probe"]["procfs"] = str(fixture / "proc")
    config.write_text(json.dumps(data))
    assert _run_on_host(tmp_path / "program", fixture, config).returncode == 0
    assert f"{textfile.FABRIC_MANAGER_RUNNING} 1.0" in (textfile_dir / textfile.FILE_NAME).read_text()
    for pid in (p for p in (fixture / "proc").iterdir() if p.name.isdigit()):
        shutil.rmtree(pid)
    assert _run_on_host(tmp_path / "program", fixture, config).returncode == 0
    text = (textfile_dir / textfile.FILE_NAME).read_text()
    assert f"{textfile.FABRIC_MANAGER_RUNNING} 0.0" in text
    assert 'llmobs_gpu_preflight_check{check="fabric_manager",verdict="FAIL"} 1.0' in text


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    installed = timer_files({**TIMER, "gpu_preflight_python": str(SYSTEM_PYTHON)}, plan(settings()), {}, "h")
    for name, text in installed["units"].items():
        (tmp_path / name).write_text(text)
    done = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / f"{UNIT}.timer"),
                           str(tmp_path / f"{UNIT}.service")], capture_output=True, text=True, timeout=60,
                          check=False)
    # verify checks the ExecStart binary exists, the sections and every directive; nothing may be reported.
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_program_and_the_units_are_one_tree_under_their_common_directory() -> None:
    """The role writes them in one step (one round trip to the host), each where its directory says."""
    installed = timer_files(TIMER, plan(settings()), {}, "h")
    install = installed["install"]
    assert install["root"] == "/"
    assert install["files"][f"etc/systemd/system/{UNIT}.timer"] == installed["units"][f"{UNIT}.timer"]
    assert install["files"]["opt/llmobs/gpu-preflight/gpu_preflight.json"] == installed["files"]["gpu_preflight.json"]
    assert install["units"] == sorted(f"etc/systemd/system/{name}" for name in installed["units"])
    assert len(install["files"]) == len(installed["files"]) + len(installed["units"])
    nested = timer_files({**TIMER, "gpu_preflight_systemd_dir": "/opt/llmobs/gpu-preflight/units"}, plan(settings()),
                         {}, "h")["install"]
    assert nested["root"] == "/opt/llmobs/gpu-preflight" and f"units/{UNIT}.service" in nested["files"]


@pytest.mark.parametrize(("field", "value"), [("gpu_preflight_timer_interval", "every 15 minutes"),
                                              ("gpu_preflight_timer_dir", "relative/dir")])
def test_bad_timer_variables_name_the_variable(field: str, value: str) -> None:
    with pytest.raises(ConfigErrors) as caught:
        timer_files({**TIMER, field: value}, plan(settings()), {}, "h")
    assert any(error.field == field for error in caught.value.errors), caught.value
