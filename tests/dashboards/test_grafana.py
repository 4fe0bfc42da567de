"""The lab's real Grafana (the pinned image), provisioned from the committed grafana/: data sources healthy,
every dashboard loaded, and a panel query answered through Grafana's own query API. Without the image the
`lab_grafana` fixture skips these with the reason."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from llmobs.dashboards.live import live_queries

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "grafana/dashboards").glob("*.json"))
pytestmark = [pytest.mark.docker, pytest.mark.lab, pytest.mark.grafana]


@pytest.fixture(scope="module")
def grafana(lab_grafana: tuple[str, str, str]) -> tuple[str, requests.Session]:
    url, user, password = lab_grafana
    session = requests.Session()
    session.auth = (user, password)
    return url, session


def _eventually_ok(session: requests.Session, url: str) -> requests.Response:
    """Grafana provisions at start and its data sources may still be connecting: retry for a minute."""
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
    expected = {d["uid"]: d for d in (json.loads(path.read_text()) for path in DASHBOARDS)}
    found = _eventually_ok(session, f"{url}/api/search?type=dash-db&tag=llmobs").json()
    assert {item["uid"] for item in found} == set(expected)
    for uid, dashboard in expected.items():
        loaded = session.get(f"{url}/api/dashboards/uid/{uid}", timeout=10)
        assert loaded.ok, loaded.text
        body = loaded.json()
        assert body["meta"]["provisioned"] and body["meta"]["folderUid"] == "llmobs"
        assert body["dashboard"]["title"] == dashboard["title"]
        assert len(body["dashboard"]["panels"]) == len(dashboard["panels"])


def test_grafana_answers_panel_queries(grafana: tuple[str, requests.Session]) -> None:
    """Queries of the fleet dashboard, sent through Grafana to the provisioned Prometheus, return frames."""
    url, session = grafana
    fleet: dict[str, Any] = json.loads((REPO / "grafana/dashboards/llmobs-fleet.json").read_text())
    queries = [q for q in live_queries(fleet) if q.panel in ("Requests/s", "GPUs reporting", "Hosts")]
    response = session.post(f"{url}/api/ds/query", timeout=30, json={
        "from": "now-5m", "to": "now",
        "queries": [{"refId": f"{q.panel}/{q.ref}", "datasource": {"type": "prometheus", "uid": "prometheus"},
                     "expr": q.expr, "instant": True} for q in queries],
    })
    assert response.ok, response.text
    results = response.json()["results"]
    for query in queries:
        result = results[f"{query.panel}/{query.ref}"]
        assert result.get("status", 200) == 200 and result.get("frames"), (query, result)
