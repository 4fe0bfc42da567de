"""The gpu_preflight and docker_host roles: every check documented, ansible-lint production profile clean.
(tests/ansible/test_role_specs.py keeps their argument specs and defaults in step.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gpu_recordings import REPO

ROLES = ("gpu_preflight", "docker_host")


def test_the_preflight_role_documents_every_check() -> None:
    from llmobs.preflight import CHECKS

    spec = (REPO / "roles" / "gpu_preflight" / "meta" / "argument_specs.yml").read_text()
    for check in CHECKS:
        assert check in spec, f"argument_specs.yml does not name the check {check}"


def test_ansible_lint_production_profile() -> None:
    lint = Path(sys.executable).with_name("ansible-lint")
    if not lint.exists():
        pytest.skip("ansible-lint is not installed beside the test interpreter")
    env = {**os.environ, "PATH": f"{lint.parent}:{os.environ['PATH']}", "NO_COLOR": "1"}
    done = subprocess.run([str(lint), "--profile", "production", *(f"roles/{role}" for role in ROLES)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
