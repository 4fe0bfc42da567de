"""What the kit's molecule scenarios need from this machine, shared by their tests.

The instances are containers that drive the host's Docker daemon (docker-outside-of-docker): they get
the host's docker CLI, its Compose plugin and socket mounted, and the image variables `llmobs setup`
chose (stand-ins where no registry answers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmobs import images

REPO = Path(__file__).resolve().parents[2]
HOST_IMAGE = "llmobs/molecule-host:bookworm"
MOLECULE = Path(sys.executable).with_name("molecule")


def _compose_plugin_dir() -> str | None:
    result = subprocess.run(["docker", "info", "--format", "{{json .ClientInfo.Plugins}}"],
                            capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        return None
    plugins = json.loads(result.stdout or "[]")
    compose = next((p for p in plugins if p.get("Name") == "compose"), None)
    return str(Path(compose["Path"]).resolve().parent) if compose else None


def environment() -> dict[str, str]:
    """The environment molecule runs in; skips the calling test when this machine lacks a piece."""
    if not MOLECULE.exists():
        pytest.skip(f"molecule is not installed beside {sys.executable}")
    docker = shutil.which("docker")
    plugins = _compose_plugin_dir() if docker else None
    if not docker or not plugins:
        pytest.skip("no Docker daemon with the Compose plugin answers (run `llmobs setup`)")
    chosen = images.read_env()
    if not chosen:
        pytest.skip(f"{images.IMAGES_ENV} is missing: run `llmobs setup` to get the images or their stand-ins")
    build = subprocess.run(
        ["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={images.base_image(print)}", "-t", HOST_IMAGE,
         str(REPO / "molecule" / "host")], capture_output=True, text=True, check=False, timeout=900)
    assert build.returncode == 0, f"building {HOST_IMAGE} failed:\n{build.stderr[-3000:]}"
    return {
        **os.environ, **chosen,
        "PATH": f"{MOLECULE.parent}:{os.environ['PATH']}",
        "LLMOBS_MOL_DOCKER_CLI": str(Path(docker).resolve()),
        "LLMOBS_MOL_COMPOSE_PLUGINS": plugins,
        "NO_COLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
    }


def molecule(action: str, cwd: Path, env: dict[str, str], scenario: str, *playbook_args: str,
             timeout: int = 900) -> tuple[subprocess.CompletedProcess, float]:
    """Run `molecule <action> -s <scenario> [-- <ansible-playbook args>]`; returns the result and its seconds."""
    started = time.monotonic()
    command = [str(MOLECULE), action, "-s", scenario, *(["--", *playbook_args] if playbook_args else [])]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return done, time.monotonic() - started
