"""Spans through the real Collector into the real Jaeger: the lab's `tracing` profile (the pinned images, the
committed otel/ configurations) in a Compose project of its own, on ephemeral ports. The OpenTelemetry SDK
sends a span over OTLP/HTTP, as an application or vLLM (with OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf)
would; it is read back from Jaeger's query API, the one Grafana's Jaeger datasource reads, and the Collector's
own metrics count it. Where either image is absent (no registry here, no stand-in) the fixture skips these
with the reason, as the Grafana tests do."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from llmobs import setup
from llmobs.conventions import COLLECTOR_METRICS_PORT, COLLECTOR_SERVICE, OTLP_HTTP_PORT, TRACE_STORE_QUERY_PORT
from llmobs.lab import Lab

pytestmark = [pytest.mark.docker, pytest.mark.tracing]
IMAGES = ("OTELCOL_IMAGE", "JAEGER_IMAGE")
PORTS = {"LLMOBS_OTLP_GRPC_PORT": "0", "LLMOBS_OTLP_HTTP_PORT": "0", "LLMOBS_OTELCOL_METRICS_PORT": "0",
         "LLMOBS_JAEGER_PORT": "0"}


@pytest.fixture(scope="module")
def tracing() -> Iterator[Lab]:
    if not setup.docker_answers():
        pytest.skip("Docker Engine is not running: run `./kit test`, which starts it")
    lab = Lab(project=f"llmobs-traces-e2e-{os.getpid()}", env=dict(PORTS), profiles=("tracing",))
    for variable in IMAGES:
        available, reason = lab.image_available(variable)
        if not available:
            pytest.skip(f"the tracing services are not part of the lab here: {reason}")
    try:
        lab.compose("up", "--detach", "--wait", "--wait-timeout", "90", "jaeger", COLLECTOR_SERVICE, timeout=210)
        yield lab
    finally:
        lab.down(volumes=True)


def _eventually(read, what: str, seconds: float = 60) -> object:
    """What `read` returns once it is truthy (the services start, then batch for a second)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = read()
        except requests.RequestException:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds:.0f} s")
        time.sleep(1)


def test_a_span_sent_to_the_collector_is_read_back_from_jaeger(tracing: Lab) -> None:
    collector = f"http://{tracing.port(COLLECTOR_SERVICE, OTLP_HTTP_PORT)}"
    jaeger = f"http://{tracing.port('jaeger', TRACE_STORE_QUERY_PORT)}"
    provider = TracerProvider(resource=Resource.create({"service.name": "llmobs-traces-test"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector}/v1/traces")))
    with provider.get_tracer("llmobs.tests").start_as_current_span("llm_request") as span:
        span.set_attribute("gen_ai.request.model", "llama-3.1-8b-instruct")
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()

    def stored() -> list[dict]:
        response = requests.get(f"{jaeger}/api/traces/{trace_id}", timeout=5)
        return response.json().get("data") if response.ok else []

    trace, = _eventually(stored, f"trace {trace_id} was not in Jaeger")
    span, = trace["spans"]
    assert span["operationName"] == "llm_request"
    assert {"key": "gen_ai.request.model", "type": "string", "value": "llama-3.1-8b-instruct"} in span["tags"]
    assert trace["processes"][span["processID"]]["serviceName"] == "llmobs-traces-test"
    services = requests.get(f"{jaeger}/api/services", timeout=5).json()["data"]
    assert "llmobs-traces-test" in services


def test_the_collector_counts_what_it_accepted_and_sent_for_prometheus(tracing: Lab) -> None:
    metrics = f"http://{tracing.port(COLLECTOR_SERVICE, COLLECTOR_METRICS_PORT)}/metrics"

    def sent() -> str:
        text = requests.get(metrics, timeout=5).text
        return text if "otelcol_exporter_sent_spans{" in text else ""

    text = _eventually(sent, "the Collector exposed no otelcol_exporter_sent_spans")
    assert "otelcol_receiver_accepted_spans{" in text and "otelcol_exporter_send_failed_spans" in text
