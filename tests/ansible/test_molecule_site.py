"""The whole-site molecule scenario (molecule/site): site.yml on two monitoring and two GPU "servers", with the
Prometheus HA pair, the Alertmanager cluster, the long-term store and TLS with basic auth on every exporter and
server.

Makes the scenario's CA, one server certificate per host and its secrets (the basic-auth password, a token in
the receiver's URL) for this run only, then runs the scenario step by step to print the time of the converge
and of the idempotent re-run: create (with prepare), `--check --diff` on the fresh hosts, converge, idempotence
(changed=0), verify. The Ansible output of check, converge and idempotence (verbose) is searched for every
secret value: one hit fails the test.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from molecule_env import REPO, environment, molecule
from pki import make_ca, make_server, pem

pytestmark = [pytest.mark.molecule, pytest.mark.docker]

HOSTS = ["llmobs-mol-site-monitor1", "llmobs-mol-site-monitor2", "llmobs-mol-site-gpu1", "llmobs-mol-site-gpu2"]
# What a monitoring host's services answer to besides its name (molecule.yml: etc_hosts).
SERVICE_NAMES = ["prometheus", "alertmanager", "node-exporter", "victoria-metrics", "localhost", "127.0.0.1"]
# The runs whose Ansible output is searched for the secrets (every task of site.yml runs in each).
SEARCHED = ("check --diff", "converge", "idempotence")


def _site_secrets(directory: Path) -> dict[str, str]:
    """The CA, each host's certificate and key under `directory`, and the secrets; returns what must never
    appear in a log (each key's PEM body lines, the password, the token and the URL that carries it)."""
    ca = make_ca("llmobs molecule site CA")
    (directory / "ca.crt").write_text(pem(ca[1]))
    never_logged = {}
    for host in HOSTS:
        cert, key = make_server(ca, [host, *SERVICE_NAMES], common=host)
        (directory / f"{host}.crt").write_text(cert)
        (directory / f"{host}.key").write_text(key)
        never_logged[f"vault_llmobs_mol_key of {host}"] = key.splitlines()[1]
    password, token = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    # Named by the variable of molecule/site/vars/site.yml that carries each.
    never_logged |= {"vault_llmobs_mol_password": password, "the token in vault_llmobs_mol_sink_url": token,
                     "vault_llmobs_mol_sink_url": f"http://llmobs-mol-site-sink:9095/alerts?token={token}"}
    return {"LLMOBS_MOL_PKI": str(directory), "LLMOBS_MOL_PASSWORD": password, "LLMOBS_MOL_SINK_TOKEN": token,
            **{f"never logged: {name}": value for name, value in never_logged.items()}}


def _failure(output: str) -> str:
    """What a failed run says: from its first failed task on (a verbose run is long), and its end."""
    first = min((output.find(mark) for mark in ("fatal: [", "failed: [") if mark in output), default=-1)
    head = output[max(first - 2000, 0):first + 8000] + "\n...\n" if first >= 0 else ""
    return head + output[-4000:]


def test_site_scenario(figure, tmp_path: Path) -> None:
    made = _site_secrets(tmp_path)
    never_logged = {name.removeprefix("never logged: "): value for name, value in made.items()
                    if name.startswith("never logged: ")}
    env = {**environment(), **{name: value for name, value in made.items() if name.startswith("LLMOBS_MOL_")}}
    timings: dict[str, float] = {}
    logs: dict[str, str] = {}
    try:
        steps = [("cleanup", ()), ("destroy", ()), ("create", ()), ("check --diff", ("--check", "--diff")),
                 ("converge", ()), ("idempotence", ()), ("verify", ())]
        for step, playbook_args in steps:
            action = "converge" if playbook_args else step
            # Verbose (every task's result shown) where the output is searched, plain elsewhere.
            step_env = {**env, "ANSIBLE_VERBOSITY": "1"} if step in SEARCHED else env
            done, timings[step] = molecule(action, REPO, step_env, "site", *playbook_args)
            output = done.stdout + done.stderr
            # Kept beside the run's certificates (pytest keeps the last runs' tmp_path) for a look afterwards.
            (tmp_path / f"{step.split()[0]}.log").write_text(output)
            if step in SEARCHED:
                logs[step] = output
            assert done.returncode == 0, f"molecule {step} failed:\n{_failure(output)}"
            if step == "check --diff":
                assert "--- before" in output, "check mode showed no diff on fresh hosts"
            if step == "verify":
                summary = re.findall(r"^=+ (.*) in [0-9.]+s", output, flags=re.M)
                assert summary and "passed" in summary[-1] and "failed" not in summary[-1], output[-4000:]
    finally:
        for action in ("cleanup", "destroy"):
            timings[f"{action} at the end"] = molecule(action, REPO, env, "site")[1]
        figure("whole-site scenario: " + ", ".join(f"{action} {seconds:.0f} s" for action, seconds in timings.items()))
    figure(f"converge {timings['converge']:.0f} s, idempotent re-run {timings['idempotence']:.0f} s")
    hits = [f"{name} in the {step} output" for step, output in logs.items()
            for name, value in never_logged.items() if value in output]
    lines = sum(output.count("\n") for output in logs.values())
    figure(f"secrets searched in the Ansible output: {len(never_logged)} values, {lines} lines, {len(hits)} found")
    assert not hits, hits
