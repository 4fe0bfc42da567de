"""`llmobs setup` is idempotent and its choices are consistent with the compose files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmobs import images, setup
from llmobs.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]


def test_every_image_variable_is_pinned_once_to_a_tag() -> None:
    pinned = images.pins()
    assert set(images.STANDINS) <= set(pinned), "every image with a stand-in needs a pin in compose/"
    for variable, image in pinned.items():
        tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
        assert tag and tag != "latest", f"{variable} must be pinned to an explicit tag, got {image!r}"


def test_conflicting_pins_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("image: ${PROMETHEUS_IMAGE:-prom/prometheus:v1}\n")
    (tmp_path / "b.yaml").write_text("image: ${PROMETHEUS_IMAGE:-prom/prometheus:v2}\n")
    with pytest.raises(images.ImageError, match="PROMETHEUS_IMAGE is pinned to both"):
        images.pins(tmp_path)


@pytest.mark.docker
def test_second_setup_changes_nothing() -> None:
    """The suite runs after `llmobs setup`; running it again must build nothing and keep its choices."""
    if not setup.docker_answers():
        pytest.skip("Docker Engine is not running: run `./kit test`, which starts it")
    before = Workspace(REPO).images_env.read_text()
    result = subprocess.run([sys.executable, "-m", "llmobs", "setup"], capture_output=True, text=True,
                            cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "building" not in result.stdout and "installing" not in result.stdout, result.stdout
    assert Workspace(REPO).images_env.read_text() == before


@pytest.mark.docker
def test_standins_keep_the_upstream_interface() -> None:
    """Entrypoint, user and ports of each stand-in match what the compose files expect of upstream."""
    chosen = images.read_env()
    if not chosen:
        pytest.skip("`llmobs setup` has not run on this machine")
    expected = {
        "PROMETHEUS_IMAGE": (["/bin/prometheus"], "nobody", "9090/tcp"),
        "ALERTMANAGER_IMAGE": (["/bin/alertmanager"], "nobody", "9093/tcp"),
        "NODE_EXPORTER_IMAGE": (["/bin/node_exporter"], "nobody", "9100/tcp"),
        "DCGM_EXPORTER_IMAGE": (["/usr/bin/dcgm-exporter"], "root", "9400/tcp"),
    }
    checked = 0
    for variable, (entrypoint, user, port) in expected.items():
        image = chosen.get(variable, "")
        if not image.startswith("llmobs-standin/"):
            continue  # the upstream image itself
        fmt = "{{json .Config.Entrypoint}}|{{.Config.User}}|{{json .Config.ExposedPorts}}"
        out = subprocess.run(["docker", "image", "inspect", "--format", fmt, image],
                             capture_output=True, text=True, check=True).stdout.strip()
        got_entrypoint, got_user, got_ports = out.split("|")
        assert got_entrypoint == str(entrypoint).replace("'", '"'), f"{image} entrypoint {got_entrypoint}"
        assert (got_user or "root") == user, f"{image} runs as {got_user!r}"
        assert port in got_ports, f"{image} does not expose {port}"
        checked += 1
    if not checked:
        pytest.skip("every image is the upstream one: no stand-in to compare")


@pytest.mark.docker
def test_a_rebuild_removes_the_image_it_replaced() -> None:
    if not setup.docker_answers():
        pytest.skip("Docker Engine is not running: run `./kit test`, which starts it")
    base = images.base_image(print)
    old, new = "llmobs-standin/superseded-check:old", "llmobs-standin/superseded-check:new"
    for tag in (old, new):
        subprocess.run(["docker", "tag", base, tag], check=True)
    try:
        images._remove_superseded(new)
        assert not images.present(old) and images.present(new) and images.present(base)
    finally:
        subprocess.run(["docker", "image", "rm", old, new], capture_output=True)
