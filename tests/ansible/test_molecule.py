"""Molecule scenarios of the deployment roles: converge, idempotence (second run changed=0), testinfra.

Each role's scenario runs on one container "server" (docker-outside-of-docker, molecule/group_vars),
two scenarios at a time (they use their own networks, directories and project names). The whole-site
scenario is in test_molecule_site.py.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from molecule_env import REPO, environment, molecule

pytestmark = [pytest.mark.molecule, pytest.mark.docker]

ROLES = ["prometheus", "alertmanager", "grafana", "node_exporter", "dcgm_exporter"]


@pytest.fixture(scope="module")
def scenario_runs() -> dict[str, tuple[subprocess.CompletedProcess, float]]:
    env = environment()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {role: pool.submit(molecule, "test", REPO / "roles" / role, env) for role in ROLES}
        return {role: future.result() for role, future in futures.items()}


@pytest.mark.parametrize("role", ROLES)
def test_role_scenario(scenario_runs, role: str, figure) -> None:
    done, seconds = scenario_runs[role]
    output = done.stdout + done.stderr
    figure(f"molecule test of {role}: {seconds:.0f} s")
    assert done.returncode == 0, output[-8000:]
    assert "idempotence: Executed: Successful" in output, output[-4000:]
    assert "verify: Executed: Successful" in output, output[-4000:]
