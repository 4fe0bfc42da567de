"""Molecule scenarios of gpu_preflight and docker_host: create, converge, idempotence (second run
changed=0), testinfra verify, destroy. Each instance image is built FROM the kit's Debian base image."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gpu_recordings import REPO

from llmobs import images

pytestmark = [pytest.mark.molecule, pytest.mark.docker]

SCENARIOS = {  # role -> the image its molecule.yml names
    "gpu_preflight": "llmobs-mol/gpu-preflight:bookworm",
    "docker_host": "llmobs-mol/docker-host:bookworm",
}


def _docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "version"], capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.parametrize("role", SCENARIOS)
def test_molecule_scenario(role: str, figure) -> None:
    molecule = Path(sys.executable).with_name("molecule")
    if not molecule.exists():
        pytest.skip(f"molecule is not installed beside {sys.executable}")
    if not _docker_answers():
        pytest.skip("no Docker daemon answers (run `llmobs setup`)")
    scenario = REPO / "roles" / role / "molecule" / "default"
    base = images.base_image(print)
    build = subprocess.run(["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={base}", "-t", SCENARIOS[role],
                            str(scenario)], capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr[-3000:]
    env = {**os.environ, "PATH": f"{molecule.parent}:{os.environ['PATH']}", "NO_COLOR": "1"}
    started = time.monotonic()
    done = subprocess.run([str(molecule), "test"], cwd=scenario.parent.parent, env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    figure(f"molecule test of {role}: {time.monotonic() - started:.0f} s")
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert "idempotence: Executed: Successful" in done.stdout + done.stderr
    assert "verify: Executed: Successful" in done.stdout + done.stderr
