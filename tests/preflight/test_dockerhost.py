"""daemon.json merging of the docker_host role: keep the operator's keys, add the runtime, refuse bad JSON."""

from __future__ import annotations

import json

import pytest

from llmobs import dockerhost
from llmobs.errors import ConfigError

NVIDIA = {"runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}


def test_the_runtime_is_merged_into_an_existing_file_without_dropping_keys() -> None:
    current = json.dumps({"log-driver": "json-file", "log-opts": {"max-size": "10m"},
                          "runtimes": {"crun": {"path": "/usr/bin/crun"}}})
    wanted = dockerhost.wanted_config(True, "nvidia-container-runtime", False, {"log-opts": {"max-file": "3"}})
    update = dockerhost.daemon_json_update(current, wanted)
    assert update["config"] == {
        "log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"},
        "runtimes": {"crun": {"path": "/usr/bin/crun"}, **NVIDIA["runtimes"]},
    }
    assert update["differs"]


def test_a_file_that_already_has_the_keys_is_left_alone_whatever_its_formatting() -> None:
    current = '{\n  "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}\n}\n'
    wanted = dockerhost.wanted_config(True, "nvidia-container-runtime", False, {})
    assert dockerhost.daemon_json_update(current, wanted) == {"config": NVIDIA, "differs": False}


def test_an_absent_or_empty_file_gets_only_the_wanted_keys() -> None:
    wanted = dockerhost.wanted_config(True, "/usr/bin/nvidia-container-runtime", True, {})
    for current in (None, "", "  \n"):
        update = dockerhost.daemon_json_update(current, wanted)
        assert update["config"]["default-runtime"] == "nvidia" and update["differs"]
    assert dockerhost.daemon_json_update(None, {}) == {"config": {}, "differs": False}


@pytest.mark.parametrize(("current", "problem"), [
    ('{"log-driver": "json-file",}', "is not valid JSON"),
    ("[1, 2]", "not an object"),
])
def test_a_broken_file_stops_before_anything_is_written(current: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as raised:
        dockerhost.daemon_json_update(current, {}, "/etc/docker/daemon.json")
    assert str(raised.value).startswith("/etc/docker/daemon.json:")


def test_a_default_runtime_needs_the_runtime() -> None:
    with pytest.raises(ConfigError, match="docker_host_nvidia_default_runtime"):
        dockerhost.wanted_config(False, "nvidia-container-runtime", True, {})
