"""A simulated host over HTTP: its exporter, engines, fault port and the CLI; and the alert sink."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ports import free_ports

from llmobs.errors import ConfigError, UnreachableError
from llmobs.http import request
from llmobs.sim.alert_sink import AlertSink
from llmobs.sim.dcgm import ExporterOptions
from llmobs.sim.host import HostConfig, HostSim
from llmobs.sim.vllm import EngineConfig

from .conftest import catalog_counters, families, series


def _get(url: str) -> tuple[int, bytes]:
    response = request(url, timeout=5, check=False)
    return response.status, response.body


def _send(method: str, url: str, body: object = None) -> tuple[int, dict]:
    response = request(url, method, body, timeout=5, check=False)
    return response.status, response.json()


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[HostSim, dict[str, str]]]:
    counters = tmp_path / "counters.csv"
    counters.write_text(catalog_counters())
    exporter_port, engine_port, control_port = free_ports(3)
    sim = HostSim(HostConfig(
        name="gpu-test-1", gpu_model="A100-SXM", gpus=2, bind="127.0.0.1",
        engines=(EngineConfig("qwen2.5-7b-instruct", port=engine_port, gpus=(1,), rps=3),),
        exporter=ExporterOptions(collectors=counters, collect_interval_ms=200, hostname="gpu-test-1"),
        exporter_address=("127.0.0.1", exporter_port), fault_port=control_port))
    sim.start()
    urls = {"exporter": f"http://127.0.0.1:{exporter_port}", "engine": f"http://127.0.0.1:{engine_port}",
            "control": f"http://127.0.0.1:{control_port}"}
    yield sim, urls
    sim.stop()


def test_engine_load_drives_its_gpu_only(host) -> None:
    _sim, urls = host
    time.sleep(2.5)
    values = {(name, dict(labels)["gpu"]): float(value)
              for name, labels, value in series(_get(f"{urls['exporter']}/metrics")[1].decode())
              if "gpu" in dict(labels)}
    assert values[("DCGM_FI_DEV_GPU_UTIL", "1")] > 90 and values[("DCGM_FI_DEV_GPU_UTIL", "0")] == 0
    assert values[("DCGM_FI_DEV_FB_USED", "1")] > 0.85 * 81920 > values[("DCGM_FI_DEV_FB_USED", "0")]
    hostnames = {dict(labels)["hostname"] for _, labels, _ in series(_get(f"{urls['exporter']}/metrics")[1].decode())}
    assert hostnames == {"gpu-test-1"}


def test_openai_api_answers_and_counts(host) -> None:
    _sim, urls = host
    status, models = _send("GET", f"{urls['engine']}/v1/models")
    assert status == 200 and models["data"][0]["id"] == "qwen2.5-7b-instruct"
    status, answer = _send("POST", f"{urls['engine']}/v1/completions",
                           {"model": "qwen2.5-7b-instruct", "prompt": "Say hi", "max_tokens": 4})
    assert status == 200 and answer["usage"]["completion_tokens"] <= 4 and answer["choices"][0]["text"]
    status, answer = _send("POST", f"{urls['engine']}/v1/chat/completions",
                           {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 3})
    assert status == 200 and answer["choices"][0]["message"]["role"] == "assistant"
    status, answer = _send("POST", f"{urls['engine']}/v1/completions", {"model": "other", "prompt": "x"})
    assert status == 404 and "does not exist" in answer["error"]["message"]
    metrics = families(_get(f"{urls['engine']}/metrics")[1].decode())
    counted = {(s.labels["handler"], s.labels["status"]): s.value for s in metrics["http_requests"].samples
               if s.name == "http_requests_total"}
    assert counted[("/v1/models", "2xx")] == 1 and counted[("/v1/completions", "4xx")] == 1


def test_faults_over_http_and_recovery(host) -> None:
    sim, urls = host
    status, answer = _send("POST", f"{urls['control']}/sim/faults", {"fault": "xid", "gpu": 7, "code": 79})
    assert status == 400 and answer["field"] == "gpu" and "0 to 1" in answer["fix"]
    status, answer = _send("POST", f"{urls['control']}/sim/faults", {"fault": "melt", "gpu": 0})
    assert status == 400 and answer["field"] == "fault"
    status, answer = _send("POST", f"{urls['control']}/sim/faults", {"fault": "xid", "gpu": 0})
    assert status == 400 and answer["field"] == "code"
    status, _ = _send("POST", f"{urls['control']}/sim/faults", {"fault": "xid", "gpu": 0, "code": 79})
    assert status == 201
    time.sleep(0.5)
    text = _get(f"{urls['exporter']}/metrics")[1].decode()
    assert [(dict(labels)["gpu"], value) for name, labels, value in series(text)
            if name == "DCGM_EXP_XID_ERRORS_COUNT" and "xid" in dict(labels)] == [("0", "1")]
    status, listed = _send("GET", f"{urls['control']}/sim/faults")
    assert [f["fault"] for f in listed["faults"]] == ["xid"] and "exporter-down" in listed["kinds"]
    status, cleared = _send("DELETE", f"{urls['control']}/sim/faults?fault=xid&gpu=0")
    assert [f["fault"] for f in cleared["cleared"]] == ["xid"] and not sim.faults.all()


@pytest.mark.parametrize(("request_body", "endpoint"), [
    ({"fault": "exporter-down"}, "exporter"),
    ({"fault": "engine-down", "engine": "qwen2.5-7b-instruct"}, "engine"),
])
def test_going_down_refuses_connections_and_drops_keep_alive(host, request_body, endpoint) -> None:
    _sim, urls = host
    url = urlsplit(urls[endpoint])
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    connection.request("GET", "/metrics")
    assert connection.getresponse().read()
    assert _send("POST", f"{urls['control']}/sim/faults", request_body)[0] == 201
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        connection.request("GET", "/metrics")   # the scrape connection Prometheus keeps open
        connection.getresponse().read()
    with pytest.raises(UnreachableError):
        request(f"{urls[endpoint]}/metrics", timeout=5)
    assert _send("DELETE", f"{urls['control']}/sim/faults")[0] == 200
    assert _get(f"{urls[endpoint]}/metrics")[0] == 200


def test_fault_cli_against_a_control_url(host) -> None:
    _sim, urls = host
    llmobs = [sys.executable, "-m", "llmobs"]
    done = subprocess.run([*llmobs, "fault", "inject", urls["control"], "engine-stuck"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "engine-stuck" in done.stdout, done.stderr
    done = subprocess.run([*llmobs, "fault", "inject", urls["control"], "latency", "factor=lots"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "factor" in done.stderr and "not a number" in done.stderr
    done = subprocess.run([*llmobs, "fault", "clear", urls["control"]], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "cleared engine-stuck" in done.stdout
    done = subprocess.run([*llmobs, "fault", "inject", "gpu-x9-1", "xid"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "'gpu-x9-1' is not a simulated host" in done.stderr, done.stderr
    assert "gpu-h100-1" in done.stderr, "the error lists the lab's simulated hosts"


def test_a_host_with_overlapping_engines_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GPU 0 already runs"):
        HostSim(HostConfig(name="h", gpu_model="H100-SXM", gpus=2, engines=(
            EngineConfig("a", port=8000, gpus=(0,)), EngineConfig("b", port=8001, gpus=(0, 1)))))


def test_alert_sink_records_notifications() -> None:
    (port,) = free_ports(1)
    sink = AlertSink(("127.0.0.1", port))
    sink.listener.start()
    try:
        url = f"http://127.0.0.1:{port}/alerts"
        payload = {"status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "GpuXidFatal"}}]}
        assert _send("POST", url, payload)[0] == 200
        assert _send("POST", url, {"not": "alertmanager"})[0] == 400
        status, received = _send("GET", url)
        assert status == 200 and [n["alerts"][0]["labels"]["alertname"] for n in received] == ["GpuXidFatal"]
        assert _send("GET", f"{url}?since={received[0]['received_at']}")[1] == []
        assert _send("DELETE", url)[0] == 200 and _send("GET", url)[1] == []
    finally:
        sink.listener.stop()
