"""TLS and basic auth switched on for real: a CA generated for the test, exporter-toolkit web config files
(the layout the roles write: web.yml, tls/server.crt, tls/server.key beside the configuration) for
Prometheus, Alertmanager and node_exporter, and Prometheus scraping and alerting them through
prometheus_scrape_auth (llmobs.deploy). Every protected endpoint answers 401 without credentials; a
scrape that trusts the wrong CA fails and raises TargetDown.

dcgm-exporter behind TLS is checked where its stand-in runs with --web-config-file: tests/sim/test_webconfig.py
and the whole-site molecule scenario (tests/ansible/test_molecule_site.py).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from ha_site import SERVICES, Site, wait_for
from pki import make_ca, make_server, pem

from llmobs import deploy, images, yamlfmt
from llmobs.files import write_tree

pytestmark = [pytest.mark.docker, pytest.mark.ha]

USER = "llmobs"
SERVER_NAMES = ("prometheus", "alertmanager", "node-exporter", "localhost", "127.0.0.1")
TLS_IMAGES = ("PROMETHEUS_IMAGE", "ALERTMANAGER_IMAGE", "NODE_EXPORTER_IMAGE")
PUBLISHED = {"prometheus": 9090, "alertmanager": 9093, "node-exporter": 9100}
PROTECTED = {"prometheus": "/api/v1/query?query=up", "alertmanager": "/api/v2/status", "node-exporter": "/metrics"}


@dataclass
class TlsSite:
    site: Site
    root: Path
    password: str
    ca_pem: str
    wrong_ca_pem: str
    context: ssl.SSLContext

    def get(self, service: str, path: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
        url = self.site.urls[service].replace("http://", "https://") + path
        request = urllib.request.Request(url)
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def api(self, path: str, method: str = "GET") -> Any:
        url = self.site.urls["prometheus"].replace("http://", "https://") + path
        request = urllib.request.Request(url, method=method)
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{self.password}".encode()).decode())
        with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body.strip().startswith(b"{") else body


def _web_files(cert: str, key: str, password: str, mount: str) -> dict[str, str]:
    """What the compose_service role writes beside a service's configuration."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    web = {"tls_server_config": {"cert_file": f"{mount}/tls/server.crt", "key_file": f"{mount}/tls/server.key"},
           "basic_auth_users": {USER: hashed}}
    return {"web.yml": yamlfmt.dump(web, "# exporter-toolkit web configuration\n"), "tls/server.crt": cert,
            "tls/server.key": key}


def _config(root: Path, password: str, ca_pem: str, cert: str, key: str) -> None:
    auth = {"username": USER, "password": password, "tls": True, "ca_cert": ca_pem}
    scrape_auth = {job: auth for job in ("prometheus", "alertmanager", "node")}
    host = {"name": "mon-1", "address": "mon-1", "gpu": False, "monitoring": True, "grafana": False,
            "exporters": ["node"]}
    settings = {"alerting": {"rules": {"TargetDown": {"for": "10s"}}}}
    options = {"scrape": {"scrape_interval": "5s", "scrape_timeout": "4s", "evaluation_interval": "5s",
                          "job_intervals": {}}, "scrape_auth": scrape_auth}
    prometheus = {**deploy.prometheus_files(settings, [host], "mon-1", options),
                  **deploy.prometheus_scrape_secrets(scrape_auth)}
    write_tree(root / "prometheus", {**prometheus, **_web_files(cert, key, password, "/etc/prometheus")})
    write_tree(root / "alertmanager", {**deploy.alertmanager_files(settings),
                                   **_web_files(cert, key, password, "/etc/alertmanager")})
    write_tree(root / "node-exporter", _web_files(cert, key, password, "/etc/node-exporter"))
    (root / "rootfs").mkdir()


def _compose(root: Path) -> dict[str, Any]:
    def service(file: str, name: str, command: list[str], mount: str) -> dict[str, Any]:
        return {"extends": {"file": str(SERVICES / file), "service": name}, "command": command,
                "volumes": [f"{root}/{name}:{mount}:ro"], "healthcheck": {"test": ["NONE"]}}
    prometheus = service("prometheus.yaml", "prometheus", [
        "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
        "--web.listen-address=:9090", "--web.enable-lifecycle", "--web.config.file=/etc/prometheus/web.yml"],
        "/etc/prometheus")
    alertmanager = service("alertmanager.yaml", "alertmanager", [
        "--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager",
        "--web.listen-address=:9093", "--cluster.listen-address=", "--web.config.file=/etc/alertmanager/web.yml"],
        "/etc/alertmanager")
    node = service("node-exporter.yaml", "node-exporter", [
        "--path.rootfs=/host", "--web.listen-address=:9100", "--web.config.file=/etc/node-exporter/web.yml"],
        "/etc/node-exporter")
    return {"services": {"prometheus": prometheus, "alertmanager": alertmanager, "node-exporter": node},
            "volumes": {"prometheus-data": {}, "alertmanager-data": {}}}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSite]:
    chosen = {**images.pins(), **images.read_env()}
    absent = [chosen[variable] for variable in TLS_IMAGES if not images.present(chosen[variable])]
    if absent:
        pytest.skip(f"images are missing: {', '.join(absent)} (`llmobs setup` builds stand-ins)")
    root = tmp_path_factory.mktemp("tls-site")
    ca, wrong = make_ca("llmobs test CA"), make_ca("some other CA")
    cert, key = make_server(ca, SERVER_NAMES)
    password = secrets.token_urlsafe(18)
    _config(root, password, pem(ca[1]), cert, key)
    compose_file = root / "compose.yaml"
    compose_file.write_text(yamlfmt.dump(_compose(root), "# The TLS test's site (tests/ha/test_tls.py)\n"))
    env = {variable: chosen[variable] for variable in TLS_IMAGES}
    env.update(LLMOBS_PROMETHEUS_PORT="0", LLMOBS_ALERTMANAGER_PORT="0", LLMOBS_NODE_EXPORTER_PORT="0",
               LLMOBS_HOST_ROOTFS=str(root / "rootfs"), LLMOBS_HOST_ROOTFS_PROPAGATION="rprivate")
    site = Site(compose_file, f"llmobs-tls-{os.getpid()}", env)
    context = ssl.create_default_context(cadata=pem(ca[1]))
    try:
        site.compose("up", "-d")
        for service, port in PUBLISHED.items():
            site.urls[service] = "http://127.0.0.1:" + site.compose("port", service, str(port)).stdout.strip().rsplit(
                ":", 1)[1]
        yield TlsSite(site, root, password, pem(ca[1]), pem(wrong[1]), context)
    finally:
        if os.environ.get("LLMOBS_HA_LOGS"):
            print(site.compose("logs", "--tail", "30", check=False).stdout[-6000:])
        site.down()


def _targets(tls: TlsSite) -> list[dict[str, Any]]:
    return tls.api("/api/v1/targets?state=active")["data"]["activeTargets"]


def test_every_target_is_up_over_tls_with_basic_auth(tls: TlsSite, figure) -> None:
    up = wait_for("every target up over TLS", lambda: (t := _targets(tls)) and all(
        x["health"] == "up" for x in t) and t, 90, every=2)
    assert all(t["scrapeUrl"].startswith("https://") for t in up)
    alertmanagers = tls.api("/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert [a["url"].split("://")[0] for a in alertmanagers] == ["https"]
    figure(f"TLS + basic auth: {len(up)} targets up over https ({', '.join(t['labels']['job'] for t in up)}), "
           f"alerts sent over https")


def test_every_protected_endpoint_answers_401_without_credentials(tls: TlsSite, figure) -> None:
    answers = {}
    for service, path in PROTECTED.items():
        answers[service] = (tls.get(service, path)[0], tls.get(service, path, (USER, "wrong"))[0],
                            tls.get(service, path, (USER, tls.password))[0])
    figure(f"unauthenticated / wrong password / right password: {answers}")
    assert all(answer == (401, 401, 200) for answer in answers.values()), answers


def test_a_scrape_with_the_wrong_ca_fails_and_raises_target_down(tls: TlsSite, figure) -> None:
    (tls.root / "prometheus" / "secrets" / "scrape-node-ca.crt").write_text(tls.wrong_ca_pem)
    changed = time.time()
    tls.api("/-/reload", "POST")
    node = wait_for("the node target down with a certificate error", lambda: next(
        (t for t in _targets(tls) if t["labels"]["job"] == "node" and t["health"] == "down"), None), 60, every=2)
    assert "certificate" in node["lastError"], node["lastError"]
    firing = wait_for("TargetDown firing", lambda: [
        a for a in tls.api("/api/v1/alerts")["data"]["alerts"]
        if a["labels"]["alertname"] == "TargetDown" and a["state"] == "firing"
        and a["labels"].get("job") == "node"], 90, every=2)
    figure(f"wrong CA: scrape fails ({node['lastError'][:80]}), TargetDown firing {time.time() - changed:.0f} s after")
    assert firing
