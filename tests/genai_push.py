"""An application instrumented with the OpenTelemetry Python SDK, as OpenLLMetry or OpenLIT instrument one:
it records the GenAI semantic-convention client metrics (gen_ai.client.token.usage, gen_ai.client.operation
.duration, with the buckets the conventions advise, from the catalog) and pushes them over OTLP/HTTP to
`endpoint`: a Prometheus' OTLP receiver, or the OTLP gateway in front of one without it. The lab session runs
one while the lab is up (tests/conftest.py), so the llmobs.genai recording rules have data like every other
rule; tests/lab/test_lab.py reads what arrived."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from llmobs import catalog as catalog_mod

SERVICE = "llmobs-lab-chat"
MODEL = "llama-3.1-8b-instruct"  # a model the lab serves (compose/lab-settings.yml), so it has a cost
ENVIRONMENT = "lab"
# Each second: one call of 0.5 s that sent 200 tokens and received 50; every tenth call fails after 3 s.
INPUT_TOKENS, OUTPUT_TOKENS, DURATION_S, FAILED_DURATION_S = 200, 50, 0.5, 3.0
EXPORT_INTERVAL_MS = 5000


@dataclass
class GenAiApplication:
    endpoint: str  # the OTLP/HTTP metrics URL (…/api/v1/otlp/v1/metrics, …/opentelemetry/v1/metrics)
    auth: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        headers = {}
        if self.auth:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
        exporter = OTLPMetricExporter(endpoint=self.endpoint, headers=headers, timeout=5)
        resource = Resource.create({"service.name": SERVICE, "service.instance.id": f"{SERVICE}-1",
                                    "deployment.environment.name": ENVIRONMENT})
        self.provider = MeterProvider(resource=resource, metric_readers=[
            PeriodicExportingMetricReader(exporter, export_interval_millis=EXPORT_INTERVAL_MS)])
        families = catalog_mod.load().bucket_families
        meter = self.provider.get_meter("llmobs.tests.genai")
        self.tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}",
                                             description="Number of input and output tokens used.",
                                             explicit_bucket_boundaries_advisory=families["gen_ai_token_usage"])
        self.duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s",
                                               description="GenAI operation duration.",
                                               explicit_bucket_boundaries_advisory=families["gen_ai_operation_duration"])
        self.call_times: list[float] = []  # when each call was recorded (wall clock), for the tests' expectations
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._calls, name="genai-application", daemon=True)

    def start(self) -> GenAiApplication:
        self._thread.start()
        return self

    def _calls(self) -> None:
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                      "gen_ai.request.model": MODEL}
        calls = 0
        while not self._stop.wait(1.0):
            calls += 1
            self.call_times.append(time.time())
            self.tokens.record(INPUT_TOKENS, {**attributes, "gen_ai.token.type": "input"})
            self.tokens.record(OUTPUT_TOKENS, {**attributes, "gen_ai.token.type": "output"})
            if calls % 10:
                self.duration.record(DURATION_S, attributes)
            else:
                self.duration.record(FAILED_DURATION_S, {**attributes, "error.type": "timeout"})

    def calls_between(self, start: float, end: float) -> int:
        return sum(1 for at in self.call_times if start < at <= end)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.provider.shutdown(timeout_millis=5000)
