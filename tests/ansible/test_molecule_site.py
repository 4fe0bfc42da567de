"""The whole-site molecule scenario (molecule/site): site.yml on one monitoring and two GPU "servers".

Runs the scenario step by step to print the time of the converge and of the idempotent re-run:
create (with prepare), `--check --diff` on the fresh hosts, converge, idempotence (changed=0), verify.
"""

from __future__ import annotations

import re

import pytest
from molecule_env import REPO, environment, molecule

pytestmark = [pytest.mark.molecule, pytest.mark.docker]


def test_site_scenario(figure) -> None:
    env = environment()
    timings: dict[str, float] = {}
    try:
        steps = [("cleanup", ()), ("destroy", ()), ("create", ()), ("check --diff", ("--check", "--diff")),
                 ("converge", ()), ("idempotence", ()), ("verify", ())]
        for step, playbook_args in steps:
            action = "converge" if playbook_args else step
            done, timings[step] = molecule(action, REPO, env, "site", *playbook_args)
            output = done.stdout + done.stderr
            assert done.returncode == 0, f"molecule {step} failed:\n{output[-10000:]}"
            if step == "check --diff":
                assert "--- before" in output, "check mode showed no diff on fresh hosts"
            if step == "verify":
                summary = re.findall(r"^=+ (.*) in [0-9.]+s", output, flags=re.M)
                assert summary and "passed" in summary[-1] and "failed" not in summary[-1], output[-4000:]
    finally:
        for action in ("cleanup", "destroy"):
            molecule(action, REPO, env, "site")
        figure("whole-site scenario: " + ", ".join(f"{action} {seconds:.0f} s" for action, seconds in timings.items()))
    figure(f"converge {timings['converge']:.0f} s, idempotent re-run {timings['idempotence']:.0f} s")
