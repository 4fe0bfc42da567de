"""Molecule scenarios of the deployment roles: converge, idempotence (second run changed=0), testinfra.

Each role's scenario runs on one container "server" (docker-outside-of-docker, molecule/group_vars).
The whole-site scenario is in test_molecule_site.py.
"""

from __future__ import annotations

import pytest
from molecule_env import REPO, environment, molecule

pytestmark = [pytest.mark.molecule, pytest.mark.docker]

ROLES = ["prometheus", "alertmanager", "grafana", "node_exporter", "dcgm_exporter"]


@pytest.mark.parametrize("role", ROLES)
def test_role_scenario(role: str) -> None:
    done, seconds = molecule("test", REPO / "roles" / role, environment())
    output = done.stdout + done.stderr
    print(f"\nmolecule test of {role}: {seconds:.0f} s")
    assert done.returncode == 0, output[-8000:]
    assert "idempotence: Executed: Successful" in output, output[-4000:]
    assert "verify: Executed: Successful" in output, output[-4000:]
