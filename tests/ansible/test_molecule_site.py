"""The whole-site molecule scenario (molecule/site): site.yml on one monitoring and two GPU "servers".

Runs the scenario step by step to print the time of the converge and of the idempotent re-run:
create, prepare, check (`--check` on the fresh hosts), converge, idempotence (changed=0), verify.
"""

from __future__ import annotations

import re

import pytest
from molecule_env import REPO, environment, molecule

pytestmark = [pytest.mark.molecule, pytest.mark.docker]


def test_site_scenario() -> None:
    env = environment()
    timings: dict[str, float] = {}
    try:
        for action in ("cleanup", "destroy", "create", "prepare", "check", "converge", "idempotence", "verify"):
            done, timings[action] = molecule(action, REPO, env, scenario="site")
            output = done.stdout + done.stderr
            assert done.returncode == 0, f"molecule {action} failed:\n{output[-10000:]}"
            if action == "verify":
                summary = re.findall(r"^=+ (.*) in [0-9.]+s", output, flags=re.M)
                assert summary and "passed" in summary[-1] and "failed" not in summary[-1], output[-4000:]
    finally:
        for action in ("cleanup", "destroy"):
            molecule(action, REPO, env, scenario="site")
        print("\nwhole-site scenario: " + ", ".join(f"{action} {seconds:.0f} s" for action, seconds in timings.items()))
    print(f"converge {timings['converge']:.0f} s, idempotent re-run {timings['idempotence']:.0f} s")
