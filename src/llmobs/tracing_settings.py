"""Settings of the traces (`otel.traces`): whether the site runs the OpenTelemetry Collector and its trace
store (Jaeger v2), how the Collector protects itself (memory limit) and batches, how long Jaeger keeps
spans, and which of vLLM's detailed traces the engines should collect.

Off by default: a site switches it on with `otel: {traces: {enabled: true}}`; the otel_collector role
then runs on the monitoring hosts, the grafana role adds the Jaeger datasource, and engines are started
with vLLM's `--otlp-traces-endpoint` (llmobs.tracing.vllm_args). The generated configurations and their
checks are llmobs.tracing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llmobs.types import Duration, Strict, duration_seconds

# vLLM 0.33's --collect-detailed-traces choices (vllm/config/observability.py, DetailedTraceModules).
DetailedTraceModule = Literal["model", "worker", "all"]


class TraceStore(Strict):
    retention: Duration = Field("72h", description="how long Jaeger keeps spans (badger TTL); whole seconds")


class Traces(Strict):
    enabled: bool = Field(False, description="run the Collector and Jaeger, point vLLM's traces at them")
    memory_limit_mib: int = Field(512, ge=64, le=65536,
                                  description="the Collector's heap limit (memory_limiter): above it, spans are "
                                              "refused (the sender retries) rather than the Collector killed")
    batch_timeout: Duration = Field("1s", description="longest wait before a batch of spans is sent to Jaeger")
    batch_size: int = Field(1024, ge=1, le=65536, description="spans that send a batch at once")
    detailed_traces: tuple[DetailedTraceModule, ...] = Field(
        (), description="vLLM's --collect-detailed-traces (model, worker, all): per-step timings, at a cost "
                        "in throughput (blocking operations); none by default")
    store: TraceStore = Field(default_factory=TraceStore)

    @model_validator(mode="after")
    def _whole_seconds(self) -> Traces:
        # Go durations (badger's TTL, the batch timeout) take no d/w/y: the generator writes seconds.
        for name, value in (("store.retention", self.store.retention), ("batch_timeout", self.batch_timeout)):
            if duration_seconds(value) < 1:
                raise ValueError(f"{name} {value} is under a second: give at least 1s")
        return self
