"""The OTLP gateway's relabeling (compose/otlp-gateway/relabel.yml, llmobs.otel), applied by the real vmagent of
the pinned Debian package (its /metric-relabel-debug page), gives the labels Prometheus 3.5's own OTLP receiver
gives (storage/remote/otlptranslator/prometheusremotewrite/helper.go, createAttributes): job is
service.namespace/service.name, instance is service.instance.id, the SDK's telemetry.sdk.* attributes stay off
the series (Prometheus keeps them on target_info). The lab's live test pushes through the gateway for real."""

from __future__ import annotations

import html
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from ports import free_ports, wait_until_ready

from llmobs import otel, tools
from llmobs.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"')


def _vmagent() -> Path:
    return next(tool.path for tool in tools.pinned() if tool.name == "vmagent")


@pytest.fixture(scope="module")
def vmagent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vmagent with the committed relabeling (it refuses to start on an invalid one); writes go nowhere."""
    binary = _vmagent()
    if not binary.is_file():
        pytest.skip(f"{binary.relative_to(REPO)} is not unpacked (`llmobs setup` unpacks it)")
    port, closed = free_ports(2)
    process = subprocess.Popen(
        [str(binary), f"-httpListenAddr=127.0.0.1:{port}", f"-remoteWrite.url=http://127.0.0.1:{closed}/api/v1/write",
         f"-remoteWrite.relabelConfig={REPO / otel.GATEWAY_RELABEL_FILE}",
         f"-remoteWrite.tmpDataPath={tmp_path_factory.mktemp('vmagent')}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}/health", process, "vmagent refused the relabeling")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _relabel(url: str, labels: str, relabel_configs: str) -> dict[str, str]:
    answer = requests.post(f"{url}/metric-relabel-debug", params={"format": "json"}, timeout=5,
                           data={"metric": f"gen_ai_client_token_usage_sum{{{labels}}}",
                                 "relabel_configs": relabel_configs}).json()
    assert answer["status"] == "success", answer
    return dict(_LABEL.findall(html.unescape(answer["resultingLabels"])))


CALL = 'gen_ai_request_model="llama", gen_ai_token_type="output", deployment_environment_name="prod"'
SDK = 'telemetry_sdk_name="opentelemetry", telemetry_sdk_language="python", telemetry_sdk_version="1.45.2"'


@pytest.mark.parametrize(("resource", "job", "instance"), [
    ('service_name="chat", service_instance_id="chat-1"', "chat", "chat-1"),
    ('service_namespace="shop", service_name="chat", service_instance_id="chat-1"', "shop/chat", "chat-1"),
    ('service_name="chat"', "chat", None),  # no service.instance.id: Prometheus makes no instance either
])
def test_gateway_labels_are_prometheus_receivers(vmagent: str, resource: str, job: str, instance: str | None) -> None:
    committed = (REPO / otel.GATEWAY_RELABEL_FILE).read_text(encoding="utf-8")
    labels = _relabel(vmagent, f"{resource}, {CALL}, {SDK}", committed)
    assert labels.get("job") == job and labels.get("instance") == instance, labels
    assert not [name for name in labels if name.startswith("telemetry_")], labels
    assert labels["service_name"] == "chat" and labels["deployment_environment_name"] == "prod", labels
    assert labels["gen_ai_request_model"] == "llama" and labels["gen_ai_token_type"] == "output", labels


def test_a_promoted_sdk_attribute_stays(vmagent: str) -> None:
    """A site that promotes telemetry.sdk.language keeps it on the series, as Prometheus' receiver would."""
    settings = load_settings({"otel": {"metrics": {"promote_resource_attributes": ["telemetry.sdk.language"],
                                                   "out_of_order_time_window": "30m"}}})
    relabel_configs = otel.artifacts(settings)[otel.GATEWAY_RELABEL_FILE]
    labels = _relabel(vmagent, f'service_name="chat", {SDK}', relabel_configs)
    assert labels.get("telemetry_sdk_language") == "python" and "telemetry_sdk_name" not in labels, labels
