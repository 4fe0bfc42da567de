"""The simulator images run as the compose services use them (real Docker)."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from llmobs import images
from llmobs.errors import UnreachableError
from llmobs.http import request

from .conftest import COUNTERS, families, series

pytestmark = pytest.mark.docker


def _image(variable: str) -> str:
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        pytest.skip("Docker Engine does not answer (`llmobs setup` starts it)")
    image = images.read_env().get(variable)
    if not image or not images.present(image):
        pytest.skip(f"{variable} is not built here (`llmobs setup`)")
    return image


def _scrape(container: str, port: int) -> str:
    address = subprocess.run(["docker", "port", container, str(port)], capture_output=True, text=True,
                             check=True).stdout.split()[0]
    deadline = time.monotonic() + 30
    while True:
        try:
            return request(f"http://{address}/metrics", timeout=5).text
        except UnreachableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_dcgm_exporter_standin_takes_the_exporters_flags_and_environment() -> None:
    """The stand-in behind the dcgm-exporter service definition: flags, DCGM_EXPORTER_* and NODE_NAME."""
    image = _image("DCGM_EXPORTER_IMAGE")
    name = f"llmobs-test-dcgm-standin-{int(time.time())}"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "-p", "127.0.0.1::9500", "-e", "NODE_NAME=gpu-node-7",
         "-e", "DCGM_EXPORTER_INTERVAL=1000", "-e", "LLMOBS_SIM_GPUS=2", "-e", "LLMOBS_SIM_GPU_MODEL=L40S",
         "-v", f"{COUNTERS}:/etc/dcgm-exporter/llmobs-counters.csv:ro",
         image, "-f", "/etc/dcgm-exporter/llmobs-counters.csv", "-a", ":9500"],
        check=True, capture_output=True)
    try:
        text = _scrape(name, 9500)
        labels = [dict(labels) for _, labels, _ in series(text)]
        assert {label["hostname"] for label in labels} == {"gpu-node-7"}
        assert {label["gpu"] for label in labels} == {"0", "1"}
        assert {label["modelName"] for label in labels} == {"NVIDIA L40S"}
        assert "DCGM_FI_DEV_GPU_TEMP" in families(text)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
