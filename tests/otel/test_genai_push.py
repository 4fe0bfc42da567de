"""What the lab's OpenTelemetry application (tests/genai_push.py) sends, where no Prometheus here takes OTLP (the
Debian stand-in is built without the receiver): the real SDK's OTLP/HTTP request, received by a local HTTP
server and decoded with opentelemetry-proto - the GenAI metric names, units, attributes and the catalog's
buckets that Prometheus' translation turns into the series the llmobs.genai rules read."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import genai_push
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from llmobs import catalog as catalog_mod
from llmobs.conventions import OTLP_METRICS_PATH


def test_the_application_pushes_the_genai_semconv_metrics_with_the_catalogs_buckets() -> None:
    received: list[tuple[str, dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    application = genai_push.GenAiApplication(f"http://127.0.0.1:{server.server_port}{OTLP_METRICS_PATH}",
                                             auth=("app", "secret"))
    application.start()
    time.sleep(2.5)
    application.stop()  # shutdown flushes the last export
    server.shutdown()
    assert received, "the SDK pushed nothing"
    path, headers, body = received[-1]
    assert path == OTLP_METRICS_PATH and headers["content-type"] == "application/x-protobuf"
    assert headers["authorization"] == "Basic YXBwOnNlY3JldA==", "the push carries Prometheus' basic auth"
    request = ExportMetricsServiceRequest.FromString(body)
    resource = {a.key: a.value.string_value for a in request.resource_metrics[0].resource.attributes}
    assert resource["service.name"] == genai_push.SERVICE and resource["deployment.environment.name"] == "lab"
    metrics = {m.name: m for scope in request.resource_metrics[0].scope_metrics for m in scope.metrics}
    assert {name: metric.unit for name, metric in metrics.items()} == {
        "gen_ai.client.token.usage": "{token}", "gen_ai.client.operation.duration": "s"}
    families = catalog_mod.load().bucket_families
    tokens = metrics["gen_ai.client.token.usage"].histogram.data_points
    assert list(tokens[0].explicit_bounds) == list(families["gen_ai_token_usage"])
    assert {next(a.value.string_value for a in p.attributes if a.key == "gen_ai.token.type") for p in tokens} == {
        "input", "output"}
    duration = metrics["gen_ai.client.operation.duration"].histogram
    assert list(duration.data_points[0].explicit_bounds) == list(families["gen_ai_operation_duration"])
    assert duration.aggregation_temporality == 2, "cumulative, which Prometheus' OTLP receiver takes as counters"
    attributes = {a.key: a.value.string_value for a in duration.data_points[0].attributes}
    assert attributes["gen_ai.request.model"] == genai_push.MODEL
