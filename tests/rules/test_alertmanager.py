"""The generated Alertmanager configuration: amtool's checks and routing, and a real Alertmanager that
routes, inhibits and renders the notification templates."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests
from ports import free_ports, wait_until_ready
from rules_support import REPO, run, tool, write_tree

from llmobs import alertmanager
from llmobs import catalog as catalog_mod
from llmobs.errors import ConfigErrors
from llmobs.settings import load_settings

SECRETS = {"PD_ROUTING_KEY": "pd-key-123", "SLACK_API_URL": "https://hooks.slack.com/services/T0/B0/xyz",
           "WECOM_BRIDGE_URL": "http://wecom-bridge:8060/send?key=abc"}

# A site with every receiver kind, routes by severity and team, and a dead man's switch.
SITE = {
    "alertmanager": {
        "receivers": {
            "default": [{"kind": "email", "to": "ops@example.com", "from": "alertmanager@example.com",
                         "smarthost": "smtp.example.com:587", "auth_username": "alertmanager",
                         "auth_password_file": "/run/secrets/smtp_password"}],
            "oncall": [{"kind": "pagerduty", "routing_key_secret": "PD_ROUTING_KEY"},
                       {"kind": "slack", "channel": "#gpu-oncall", "api_url_secret": "SLACK_API_URL"}],
            "gpu-tickets": [{"kind": "slack", "channel": "#gpu-infra", "api_url_file": "/run/secrets/slack_url"}],
            "serving-chat": [{"kind": "webhook", "url_secret": "WECOM_BRIDGE_URL"}],
            "deadman": [{"kind": "webhook", "url": "https://hc-ping.example.com/abc"}],
        },
        "routes": [
            {"receiver": "oncall", "severity": ["critical"]},
            {"receiver": "gpu-tickets", "team": ["gpu-infra"]},
            {"receiver": "serving-chat", "team": ["ml-serving"], "severity": ["warning", "info"]},
        ],
        "watchdog": {"receiver": "deadman"},
    },
}


@pytest.fixture(scope="module")
def site_config(tmp_path_factory) -> Path:
    settings = load_settings(SITE)
    root = tmp_path_factory.mktemp("am")
    write_tree(root, {"alertmanager.yml": alertmanager.render_config(settings, SECRETS),
                      **{f"templates/{n}": t for n, t in alertmanager.render_templates(settings).items()}})
    return root / "alertmanager.yml"


def test_committed_lab_config_passes_amtool(amtool: str) -> None:
    result = run(amtool, "check-config", REPO / "alertmanager" / "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


def test_site_config_with_every_receiver_kind_passes_amtool(amtool: str, site_config: Path) -> None:
    result = run(amtool, "check-config", site_config)
    assert result.returncode == 0, result.stdout + result.stderr
    text = site_config.read_text()
    for value in SECRETS.values():
        assert text.count(value) == 1, "each secret is written once, where its receiver needs it"
    assert "api_url_file: /run/secrets/slack_url" in text
    assert "auth_password_file: /run/secrets/smtp_password" in text


ROUTES = [
    # labels of an alert -> receivers it reaches, in order
    ({"alertname": "GpuXidFatal", "severity": "critical", "team": "gpu-infra", "host": "n1"}, "oncall"),
    ({"alertname": "GpuXidFatal", "severity": "critical", "team": "gpu-infra", "host": "n1", "gpu": "3",
      "engine_instance": "n1:8000", "model_name": "llama-70b", "inference_engine": "vllm", "gpus": "0-3"}, "oncall"),
    ({"alertname": "GpuThermalMarginLow", "severity": "warning", "team": "gpu-infra"}, "gpu-tickets"),
    ({"alertname": "VllmQueueBacklog", "severity": "warning", "team": "ml-serving"}, "serving-chat"),
    ({"alertname": "VllmTtftBudgetBurn", "severity": "critical", "team": "ml-serving"}, "oncall"),
    ({"alertname": "HostDiskSpaceLow", "severity": "warning", "team": "platform"}, "default"),
    ({"alertname": "Watchdog", "severity": "info", "team": "platform"}, "deadman"),
]


@pytest.mark.parametrize(("labels", "receivers"), ROUTES, ids=[labels["alertname"] + "-" + labels["severity"]
                                                               for labels, _ in ROUTES])
def test_routes(amtool: str, site_config: Path, labels: dict[str, str], receivers: str) -> None:
    result = run(amtool, "config", "routes", "test", f"--config.file={site_config}",
                 f"--verify.receivers={receivers}", *(f"{k}={v}" for k, v in labels.items()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_lab_routes_everything_to_the_alert_sink(amtool: str) -> None:
    for labels in ({"alertname": "GpuXidFatal", "severity": "critical"}, {"alertname": "Watchdog", "severity": "info"},
                   {"alertname": "VllmQueueBacklog", "severity": "warning"}):
        result = run(amtool, "config", "routes", "test", f"--config.file={REPO / 'alertmanager' / 'alertmanager.yml'}",
                     "--verify.receivers=alert-sink", *(f"{k}={v}" for k, v in labels.items()))
        assert result.returncode == 0, result.stdout + result.stderr


def test_missing_secrets_are_named_not_guessed() -> None:
    settings = load_settings(SITE)
    with pytest.raises(ConfigErrors) as caught:
        alertmanager.render_config(settings, {"SLACK_API_URL": SECRETS["SLACK_API_URL"]})
    fields = [e.field for e in caught.value.errors]
    assert fields == ["alertmanager.receivers.oncall[0].routing_key_secret",
                      "alertmanager.receivers.serving-chat[0].url_secret"]
    message = str(caught.value)
    assert "PD_ROUTING_KEY is not set" in message and "routing_key_file" in message
    assert SECRETS["SLACK_API_URL"] not in message


def test_secrets_come_from_the_environment_by_default(monkeypatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    assert "pd-key-123" in alertmanager.render_config(load_settings(SITE))


# ------------------------------------------------------------------------------ a real Alertmanager
class _Sink(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def live_alertmanager(tmp_path_factory):
    """The pinned Alertmanager (llmobs.tools) with a generated config whose receivers post to a local sink."""
    binary = tool("alertmanager")
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{sink.server_address[1]}"
    fast = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
    settings = load_settings({"alertmanager": {
        "receivers": {
            "default": [{"kind": "webhook", "url": f"{base}/default"}],
            "pager": [{"kind": "webhook", "url": f"{base}/pager"}],
            "chat": [{"kind": "slack", "channel": "#gpu", "api_url_secret": "CHAT_URL"}],
        },
        "routes": [{"receiver": "pager", "severity": ["critical"]},
                   {"receiver": "chat", "team": ["gpu-infra"]}],
        "timing": {"critical": fast, "warning": fast, "info": fast},
    }})
    root = tmp_path_factory.mktemp("live-am")
    write_tree(root, {"alertmanager.yml": alertmanager.render_config(settings, {"CHAT_URL": f"{base}/chat"}),
                      **{f"templates/{n}": t for n, t in alertmanager.render_templates(settings).items()}})
    (port,) = free_ports(1)
    process = subprocess.Popen(
        [binary, f"--config.file={root / 'alertmanager.yml'}", f"--storage.path={root / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}/-/ready", process, "Alertmanager did not start")
        yield url, _Sink.received
    finally:
        process.terminate()
        process.wait(timeout=10)
        sink.shutdown()


def _pages_after_settling(received: list, host: str, label: str, expected: int) -> set[tuple[str, str]]:
    """(alertname, `label`) of the pages the sink got for `host`, once `expected` arrived (or 30 s passed) and
    2 s more went by for anything inhibited that would still arrive."""
    def paged() -> set[tuple[str, str]]:
        return {(alert["labels"]["alertname"], alert["labels"].get(label, ""))
                for path, body in list(received) if path == "/pager" for alert in body["alerts"]
                if alert["labels"].get("host") == host}

    deadline = time.time() + 30
    while time.time() < deadline and len(paged()) < expected:
        time.sleep(0.5)
    time.sleep(2)
    return paged()


def _alert(alertname: str, severity: str, component: str, team: str, **labels: str) -> dict:
    return {"labels": {"alertname": alertname, "severity": severity, "component": component, "team": team,
                       **labels},
            "annotations": {"summary": f"{alertname} summary", "description": f"{alertname} on {labels}",
                            "runbook_url": f"docs/runbooks/x.md#{alertname.lower()}"}}


def test_live_routing_inhibition_and_templates(live_alertmanager) -> None:
    url, received = live_alertmanager
    alerts = [
        _alert("HostDown", "critical", "host", "platform", host="n1"),
        _alert("VllmEngineDown", "critical", "engine", "ml-serving", host="n1", instance="n1:8000"),  # inhibited
        _alert("GpuXidFatal", "critical", "gpu", "gpu-infra", host="n2", gpu="0", xid="79"),
        _alert("GpuThermalMarginLow", "critical", "gpu", "gpu-infra", host="n2", gpu="1"),
        _alert("GpuThermalMarginLow", "warning", "gpu", "gpu-infra", host="n2", gpu="1"),  # inhibited
        _alert("GpuThermalMarginLow", "warning", "gpu", "gpu-infra", host="n2", gpu="2"),
    ]
    assert requests.post(f"{url}/api/v2/alerts", json=alerts, timeout=5).status_code == 200

    def delivered() -> dict[str, set[tuple[str, str, str]]]:
        result: dict[str, set[tuple[str, str, str]]] = {}
        for path, body in list(received):
            if path == "/chat":
                result.setdefault(path, set()).add(("slack", body["attachments"][0]["title"],
                                                    body["attachments"][0]["text"]))
            else:
                for alert in body["alerts"]:
                    labels = alert["labels"]
                    result.setdefault(path, set()).add((labels["alertname"], labels.get("host", ""),
                                                        labels.get("gpu", "")))
        return result

    deadline = time.time() + 30
    while time.time() < deadline:
        got = delivered()
        if len(got.get("/pager", ())) >= 3 and got.get("/chat"):
            break
        time.sleep(0.5)
    time.sleep(2)  # anything inhibited that would still arrive
    got = delivered()
    assert got.get("/pager") == {("HostDown", "n1", ""), ("GpuXidFatal", "n2", "0"), ("GpuThermalMarginLow", "n2", "1")}
    assert "/default" not in got, "every alert matched a route"
    (_, title, text), = got["/chat"]
    assert title == "[FIRING:1] GpuThermalMarginLow (warning) on n2"
    assert "GpuThermalMarginLow summary" in text and "Runbook: docs/runbooks/x.md#gputhermalmarginlow" in text

    states = {(a["labels"]["alertname"], a["labels"]["severity"], a["labels"].get("gpu", "")):
              a["status"] for a in requests.get(f"{url}/api/v2/alerts", timeout=5).json()}
    assert states[("VllmEngineDown", "critical", "")]["inhibitedBy"], "HostDown must silence the host's engine alerts"
    assert states[("GpuThermalMarginLow", "warning", "1")]["inhibitedBy"], "critical must silence its warning"
    assert not states[("GpuThermalMarginLow", "warning", "2")]["inhibitedBy"]
    assert not states[("GpuXidFatal", "critical", "0")]["inhibitedBy"], "HostDown of n1 must not touch n2"


def test_live_gpu_page_inhibits_the_engine_alerts_it_causes(live_alertmanager) -> None:
    """A critical GPU alert that names the engine on its GPU (llmobs.rules.alerts) pages; the down and stuck
    alerts of that engine's model on the host are inhibited; another model's engine on the host is not."""
    url, received = live_alertmanager
    on_gpu = {"engine_instance": "n3:8000", "model_name": "llama-70b", "inference_engine": "vllm", "gpus": "0-3"}
    alerts = [
        _alert("GpuXidFatal", "critical", "gpu", "gpu-infra", host="n3", gpu="3", xid="79", **on_gpu),
        _alert("VllmEngineDown", "critical", "engine", "ml-serving", host="n3", instance="n3:8000",
               model_name="llama-70b", inference_engine="vllm"),  # inhibited
        _alert("VllmEngineStuck", "critical", "engine", "ml-serving", host="n3", instance="n3:8000",
               model_name="llama-70b", inference_engine="vllm"),  # inhibited
        _alert("VllmEngineDown", "critical", "engine", "ml-serving", host="n3", instance="n3:30000",
               model_name="qwen-32b", inference_engine="sglang"),  # another engine: pages
    ]
    assert requests.post(f"{url}/api/v2/alerts", json=alerts, timeout=5).status_code == 200

    assert _pages_after_settling(received, "n3", "model_name", 2) == {
        ("GpuXidFatal", "llama-70b"), ("VllmEngineDown", "qwen-32b")}
    states = {(a["labels"]["alertname"], a["labels"].get("model_name", "")): a["status"]
              for a in requests.get(f"{url}/api/v2/alerts", timeout=5).json() if a["labels"].get("host") == "n3"}
    assert states[("VllmEngineDown", "llama-70b")]["inhibitedBy"], "the GPU page must silence its engine's alerts"
    assert states[("VllmEngineStuck", "llama-70b")]["inhibitedBy"]
    assert not states[("VllmEngineDown", "qwen-32b")]["inhibitedBy"], "an engine on other GPUs still pages"
    assert not states[("GpuXidFatal", "llama-70b")]["inhibitedBy"]


def test_inhibited_alert_names_are_the_catalogs() -> None:
    """The inhibitions name alerts by name: a renamed alert would silently stop being inhibited."""
    names = {rule.alert for rule in catalog_mod.load().alert_rules()}
    assert {alertmanager.HOST_DOWN, alertmanager.ENGINE_DOWN, alertmanager.PROBE_FAILING} <= names


def test_live_engine_down_inhibits_its_endpoints_failing_probe(live_alertmanager) -> None:
    """An engine that is down fails its outside-in probes too: VllmEngineDown pages, EndpointProbeFailing of the
    same endpoint (the prober's instance is the engine's address) is inhibited; the failing probe of another
    endpoint on the host, whose engine is up (a proxy's fault), still pages."""
    url, received = live_alertmanager
    engine = {"host": "n4", "model_name": "llama-8b", "inference_engine": "vllm"}
    alerts = [
        _alert("VllmEngineDown", "critical", "engine", "ml-serving", instance="n4:8000", **engine),
        _alert("EndpointProbeFailing", "critical", "engine", "ml-serving", instance="n4:8000", endpoint="n4:8000",
               **engine),  # inhibited
        _alert("EndpointProbeFailing", "critical", "engine", "ml-serving", instance="n4:8001", endpoint="n4:8001",
               **engine),  # the engine of n4:8001 is up: pages
    ]
    assert requests.post(f"{url}/api/v2/alerts", json=alerts, timeout=5).status_code == 200

    assert _pages_after_settling(received, "n4", "instance", 2) == {
        ("VllmEngineDown", "n4:8000"), ("EndpointProbeFailing", "n4:8001")}
    states = {(a["labels"]["alertname"], a["labels"]["instance"]): a["status"]
              for a in requests.get(f"{url}/api/v2/alerts", timeout=5).json() if a["labels"].get("host") == "n4"}
    assert states[("EndpointProbeFailing", "n4:8000")]["inhibitedBy"], "the engine's own page must silence it"
    assert not states[("EndpointProbeFailing", "n4:8001")]["inhibitedBy"]
    assert not states[("VllmEngineDown", "n4:8000")]["inhibitedBy"]
