"""A real Grafana (the pinned image) provisioned from grafana/: data sources healthy, every dashboard loaded,
and a panel query answered through Grafana's own query API. Skipped, with the reason, without the image."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from llmobs import images
from llmobs.dashboards.live import live_queries

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "grafana/dashboards").glob("*.json"))
pytestmark = [pytest.mark.docker, pytest.mark.grafana]


def _image(variable: str) -> str:
    """The image the lab uses: images.env (written by `llmobs setup`), else the compose file's pin."""
    image = images.read_env().get(variable) or images.pins().get(variable)
    if image is None:
        pytest.fail(f"no compose service file pins ${{{variable}:-...}}")
    return image


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def grafana() -> Iterator[tuple[str, requests.Session]]:
    """Grafana with the committed provisioning, next to a Prometheus and an Alertmanager that answer
    on the names the data sources use."""
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed (run `llmobs setup`)")
    grafana_image = _image("GRAFANA_IMAGE")
    if not images.present(grafana_image):
        pytest.skip(f"the pinned Grafana image {grafana_image} is not present: no registry serves it here and"
                    " no stand-in can be built (see docs: set GRAFANA_IMAGE or `docker load` it)")
    name = f"llmobs-dash-{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(18)
    _docker("network", "create", name)
    try:
        _docker("run", "-d", "--name", f"{name}-prometheus", "--network", name, "--network-alias", "prometheus",
                _image("PROMETHEUS_IMAGE"))
        _docker("run", "-d", "--name", f"{name}-alertmanager", "--network", name,
                "--network-alias", "alertmanager", _image("ALERTMANAGER_IMAGE"))
        _docker("run", "-d", "--name", f"{name}-grafana", "--network", name, "-p", "127.0.0.1::3000",
                "-e", f"GF_SECURITY_ADMIN_PASSWORD={password}",
                "-v", f"{REPO}/grafana/provisioning:/etc/grafana/provisioning:ro",
                "-v", f"{REPO}/grafana/dashboards:/etc/grafana/dashboards:ro", grafana_image)
        port = _docker("port", f"{name}-grafana", "3000/tcp").splitlines()[0].rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        session = requests.Session()
        session.auth = ("admin", password)
        deadline = time.monotonic() + 120
        while True:
            try:
                if session.get(f"{url}/api/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("Grafana did not answer /api/health within 120 s:\n"
                            + _docker("logs", "--tail", "50", f"{name}-grafana"))
            time.sleep(1)
        yield url, session
    finally:
        for suffix in ("grafana", "alertmanager", "prometheus"):
            subprocess.run(["docker", "rm", "-f", f"{name}-{suffix}"], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", name], capture_output=True, check=False)


def _eventually_ok(session: requests.Session, url: str) -> requests.Response:
    """Prometheus and Alertmanager may still be starting: retry for up to a minute."""
    deadline = time.monotonic() + 60
    while True:
        response = session.get(url, timeout=10)
        if response.ok or time.monotonic() > deadline:
            return response
        time.sleep(2)


def test_prometheus_data_source_is_healthy(grafana: tuple[str, requests.Session]) -> None:
    url, session = grafana
    health = _eventually_ok(session, f"{url}/api/datasources/uid/prometheus/health")
    assert health.ok and health.json().get("status") == "OK", health.text


def test_alertmanager_data_source_reaches_alertmanager(grafana: tuple[str, requests.Session]) -> None:
    """The Alertmanager data source is frontend-only (no /health, grafana/grafana#83794): check it the way
    its "Test" button does, through Grafana's data source proxy."""
    url, session = grafana
    status = _eventually_ok(session, f"{url}/api/datasources/proxy/uid/alertmanager/api/v2/status")
    assert status.ok and "cluster" in status.json(), status.text


def test_every_dashboard_is_provisioned(grafana: tuple[str, requests.Session]) -> None:
    url, session = grafana
    expected = {json.loads(path.read_text())["uid"]: json.loads(path.read_text()) for path in DASHBOARDS}
    found = session.get(f"{url}/api/search", params={"type": "dash-db", "tag": "llmobs"}, timeout=10).json()
    assert {item["uid"] for item in found} == set(expected)
    for uid, dashboard in expected.items():
        loaded = session.get(f"{url}/api/dashboards/uid/{uid}", timeout=10)
        assert loaded.ok, loaded.text
        body = loaded.json()
        assert body["meta"]["provisioned"] and body["meta"]["folderUid"] == "llmobs"
        assert body["dashboard"]["title"] == dashboard["title"]
        assert len(body["dashboard"]["panels"]) == len(dashboard["panels"])


def test_grafana_answers_a_panel_query(grafana: tuple[str, requests.Session]) -> None:
    """The datasource variable resolves to the provisioned Prometheus and a generated query runs."""
    url, session = grafana
    fleet: dict[str, Any] = json.loads((REPO / "grafana/dashboards/llmobs-fleet.json").read_text())
    query = next(q for q in live_queries(fleet) if q.panel == "Firing alerts")
    response = session.post(f"{url}/api/ds/query", timeout=30, json={
        "from": "now-5m", "to": "now",
        "queries": [{"refId": "A", "datasource": {"type": "prometheus", "uid": "prometheus"},
                     "expr": query.expr, "instant": True}],
    })
    assert response.ok, response.text
    assert response.json()["results"]["A"].get("status", 200) == 200
