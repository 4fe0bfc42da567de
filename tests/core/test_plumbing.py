"""The shared plumbing: error renaming, the HTTP client against a real server, the workspace, the YAML
writer's !reset, the atomic writer."""

from __future__ import annotations

import socket
import stat
from http import HTTPStatus
from pathlib import Path

import pytest
import yaml

from llmobs import http, yamlfmt
from llmobs.errors import ConfigError, ConfigErrors, UnreachableError
from llmobs.files import write_atomic
from llmobs.sim.server import Listener, Reply, handler
from llmobs.workspace import Workspace, WorkspaceError

REPO = Path(__file__).resolve().parents[2]


def test_errors_are_renamed_by_prefix_or_by_the_longest_matching_field() -> None:
    errors = ConfigErrors([ConfigError("thresholds.x", "p", "f"), ConfigError("(top level)", "p", "f")])
    assert [e.field for e in errors.renamed("llmobs_settings").all] == ["llmobs_settings.thresholds.x",
                                                                         "llmobs_settings"]
    mapping = {"prometheus": "prometheus_scrape_options", "prometheus.remote_write": "prometheus_remote_write"}
    single = ConfigError("prometheus.remote_write[0].url", "p", "f").renamed(mapping, fix="new fix")
    assert (single.field, single.fix) == ("prometheus_remote_write[0].url", "new fix")
    assert ConfigError("prometheus.scrape_interval", "p", "f").renamed(mapping).field == (
        "prometheus_scrape_options.scrape_interval")
    assert ConfigError("other", "p", "f").renamed(mapping).field == "other"


@pytest.fixture
def server() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    routes = {("GET", "/ok"): lambda _: Reply(HTTPStatus.OK, {"answer": 42}),
              ("POST", "/echo"): lambda request: Reply(HTTPStatus.CREATED, request.json())}
    listener = Listener("test", ("127.0.0.1", port),
                        handler("TestHandler", routes, lambda _: Reply(HTTPStatus.NOT_FOUND, {"error": "no"})))
    listener.start()
    yield f"http://127.0.0.1:{port}"
    listener.stop()


def test_the_client_speaks_json_and_tells_refusals_from_silence(server: str) -> None:
    assert http.get_json(f"{server}/ok") == {"answer": 42}
    assert http.call_json(http.url(server, "/echo"), "POST", {"a": [1]}) == {"a": [1]}
    with pytest.raises(http.HttpError) as refused:
        http.get_json(f"{server}/missing")
    assert refused.value.response.status == 404 and refused.value.response.json() == {"error": "no"}
    assert http.request(f"{server}/missing", check=False).status == 404
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with pytest.raises(UnreachableError, match="is the lab up"):
        http.request(f"http://127.0.0.1:{closed}/", hint="is the lab up?")


def test_the_workspace_is_found_from_inside_the_checkout_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("LLMOBS_ROOT", raising=False)
    assert Workspace.find(REPO / "src" / "llmobs" / "rules").root == REPO
    assert Workspace(REPO).lab_topology.is_file() and Workspace(REPO).lab_settings.is_file()
    with pytest.raises(WorkspaceError, match="LLMOBS_ROOT"):
        Workspace.find(tmp_path)
    monkeypatch.setenv("LLMOBS_ROOT", str(tmp_path))
    assert Workspace.find().root == tmp_path.resolve()


def test_one_yaml_writer_with_compose_reset(tmp_path: Path) -> None:
    text = yamlfmt.dump({"services": {"a": {"ports": yamlfmt.RESET, "command": ["x", "y"]}}})
    assert "ports: !reset 'null'" in text and "    command:\n      - x\n" in text
    path = tmp_path / "deep" / "file.yml"
    write_atomic(path, text, mode=0o600)
    assert path.read_text() == text and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["file.yml"], "no temporary file is left behind"
    plain = yaml.safe_load(text.replace("!reset 'null'", "null"))
    assert plain == {"services": {"a": {"ports": None, "command": ["x", "y"]}}}
