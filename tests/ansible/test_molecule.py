"""Molecule scenarios of the deployment roles: converge, idempotence (second run changed=0), testinfra.

Each role's scenario (roles/<role>/molecule/<scenario>, over the shared .config/molecule/config.yml)
runs on one container "server" named after the scenario, two scenarios at a time (they use their own
networks, directories and project names). The whole-site scenario is in test_molecule_site.py.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from molecule_env import REPO, environment, molecule

pytestmark = [pytest.mark.molecule, pytest.mark.docker]

# role -> its scenario, named after the service (and the instance, llmobs-mol-<scenario>)
SCENARIOS = {"prometheus": "prometheus", "alertmanager": "alertmanager", "grafana": "grafana",
             "node_exporter": "node-exporter", "dcgm_exporter": "dcgm-exporter"}


@pytest.fixture(scope="module")
def scenario_runs(request: pytest.FixtureRequest) -> dict[str, tuple[subprocess.CompletedProcess, float]]:
    """`molecule test` of the selected roles' scenarios (all of them, or those `-k` picks), two at a time."""
    selected = [item.callspec.params["role"] for item in request.session.items
                if item.originalname == "test_role_scenario" and item.module is request.module]
    env = environment()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {role: pool.submit(molecule, "test", REPO / "roles" / role, env, SCENARIOS[role])
                   for role in selected}
        return {role: future.result() for role, future in futures.items()}


@pytest.mark.parametrize("role", SCENARIOS)
def test_role_scenario(scenario_runs, role: str, figure) -> None:
    done, seconds = scenario_runs[role]
    output = done.stdout + done.stderr
    figure(f"molecule test of {role}: {seconds:.0f} s")
    assert done.returncode == 0, output[-8000:]
    assert "idempotence: Executed: Successful" in output, output[-4000:]
    assert "verify: Executed: Successful" in output, output[-4000:]
